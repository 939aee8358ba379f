"""Achievable, not peak, throughput of the kernels a transformer layer runs.

Two kinds of kernels set the compute time of a layer:

- **Matmuls** run at a fraction of the tensor-core peak that saturates with the GEMM shape:
  `f · w/(w + w½) · r/(r + GEMM_HALF_ROWS)`, where f is the device's measured best-shape
  fraction (`Hardware.gemm_fraction`), w the narrow per-device dimension (h/tp) and r the rows
  (tokens of a micro-batch). The half-saturation width w½ is `GEMM_HALF_WIDTH_PER_RIDGE` × the
  device's roofline ridge point (peak FLOP/s ÷ HBM bytes/s): a GEMM whose narrow side is w
  does ~w FLOPs per byte of operand traffic, so a device with more compute per byte of
  bandwidth (H100 295 FLOP/B vs A100-80GB 153; FP8 twice the BF16 figure) needs wider GEMMs
  to fill its tensor cores. The fused attention core runs at the device's measured
  FlashAttention-2 or -3 fraction (`Hardware.attention_fraction`,
  `Hardware.attention_fraction_flash3`), with the same row saturation.
- **Memory-bound element-wise work** (norms, activations, dropout, residual adds, softmax,
  casts, the optimizer) moves bytes at the HBM bandwidth. Its traffic is taken as
  `ELEMENTWISE_PASSES` × the bytes the layer stores for backward (Korthikanti's activation
  count): each saved tensor is written in forward and read, and its gradient written and read,
  in backward.

Three constants (`OVERLAP_INTERFERENCE`, `GEMM_HALF_WIDTH_PER_RIDGE`, `ELEMENTWISE_PASSES`)
were fitted together: they are the point of `suan.plan.fit.FIT_GRID` with the lowest mean
absolute percentage error of tokens/s over the rows of ../shared/planner/calibration.csv (A100:
Megatron-LM SC'21 Table 1, Korthikanti et al. 2022, llm-foundry MPT); `python -m
suan.plan.fit` reproduces it. The hold-out rows played no part. Everything else in the model
is a published formula or figure (docs/planner.md).
"""

from __future__ import annotations

GEMM_HALF_WIDTH_PER_RIDGE = 1.2
"""Fitted. Per-device GEMM width (columns / inner dimension), in units of the
device's roofline ridge point (FLOP per HBM byte), at which a GEMM reaches half of its
best-shape fraction; narrow GEMMs (small h/tp, the head dimension of attention) under-fill
the tensor cores."""

GEMM_HALF_ROWS = 128.0
"""Rows (tokens) at which a GEMM reaches half efficiency: one 128-row CUTLASS/cuBLAS tile
(NVIDIA CUTLASS default threadblock shape 128×128×32). Not fitted."""

ELEMENTWISE_PASSES = 6.0
"""Fitted. HBM traffic of a layer's element-wise kernels over forward and backward, in
multiples of the bytes the layer stores for backward. Trades off against
GEMM_HALF_WIDTH_PER_RIDGE along a flat valley (per-ridge 0.9-1.4 with 6.5-5.5 passes fit the
calibration rows within 0.05 MAPE points); the grid minimum is taken."""

ADAM_BYTES_PER_PARAM = 30.0
"""HBM traffic of one Adam step per parameter: read fp32 grad, master, m, v (16 bytes), write
master, m, v (12) and the bf16 weight copy (2). Derived from the state layout, not fitted."""

OVERLAP_INTERFERENCE = 1.0
"""Fitted, at its physical bound. Fraction of a data-parallel (or ring-attention) collective's
duration that the compute it overlaps with loses: 0 is perfect overlap, 1 no net overlap.

The calibration fit improves monotonically from 0 (MAPE 5.6 %) to 1 (3.5 %): in the FSDP runs
parameter gathers and gradient reduce-scatters cost their full duration although they run on
a side stream. Published mechanisms: NCCL kernels hold SMs and HBM bandwidth while they run,
slowing the GEMMs they overlap by 18.9 % on average and up to 40 %, so that sequential
execution was only 10.2 % slower than overlapped (Lee et al., "Characterizing
Compute-Communication Overlap in GPU-Accelerated Distributed Deep Learning", arXiv
2507.03114, 2025); and PyTorch FSDP's BACKWARD_POST prefetch, Composer's default
(`FSDPConfig.backward_prefetch`), issues a unit's backward all-gather only after the previous
unit's gradients, putting it on the critical path. The alternative of the literature's 0.19
plus an explicitly serial backward gather fits the calibration rows worse (MAPE 4.4 %); the
FSDP2 (torchtitan) hold-out rows, checked afterwards, also sit with the fitted bound."""

HBM_EFFICIENCY = 0.85
"""Fraction of the datasheet HBM bandwidth a streaming kernel reaches (STREAM-like copies
reach ~1.3 of 1.55 TB/s on A100-40GB and ~2.9 of 3.35 TB/s on H100 SXM; NVIDIA forums and
the babel-stream results)."""


def ridge_flops_per_byte(peak_tflops: float, hbm_gbs: float) -> float:
    """The roofline ridge point: FLOPs the device can do per byte it reads from HBM."""
    return peak_tflops * 1e12 / (hbm_gbs * 1e9)


def gemm_efficiency(width: float, rows: float, peak_fraction: float, ridge: float) -> float:
    """Fraction of tensor-core peak a GEMM of per-device `width` and `rows` sustains, given
    the device's best-shape fraction `peak_fraction` (Hardware.gemm_fraction) and its ridge
    point `ridge` (FLOP/byte at the precision the GEMM runs in)."""
    half_width = GEMM_HALF_WIDTH_PER_RIDGE * ridge
    return peak_fraction * width / (width + half_width) * rows / (rows + GEMM_HALF_ROWS)


def attention_efficiency(rows: float, peak_fraction: float) -> float:
    """Fraction of peak the fused attention kernel sustains over `rows` query positions."""
    return peak_fraction * rows / (rows + GEMM_HALF_ROWS)


def memory_seconds(bytes_moved: float, hbm_gbs: float) -> float:
    """Seconds to stream `bytes_moved` through HBM at the achievable bandwidth."""
    return bytes_moved / (hbm_gbs * 1e9 * HBM_EFFICIENCY)
