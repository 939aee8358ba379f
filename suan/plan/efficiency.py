"""Achievable, not peak, throughput of the kernels a transformer layer runs.

Two kinds of kernels set the compute time of a layer:

- **Matmuls** run at a fraction of the tensor-core peak that saturates with the GEMM shape:
  `f · w/(w + GEMM_HALF_WIDTH) · r/(r + GEMM_HALF_ROWS)`, where f is the device's measured
  best-shape fraction (`Hardware.gemm_fraction`), w the narrow per-device dimension (h/tp) and
  r the rows (tokens of a micro-batch). The fused attention core runs at the device's measured
  FlashAttention fraction (`Hardware.attention_fraction`), with the same row saturation.
- **Memory-bound element-wise work** (norms, activations, dropout, residual adds, softmax,
  casts, the optimizer) moves bytes at the HBM bandwidth. Its traffic is taken as
  `ELEMENTWISE_PASSES` × the bytes the layer stores for backward (Korthikanti's activation
  count): each saved tensor is written in forward and read, and its gradient written and read,
  in backward.

Two constants were fitted by least squares on ../shared/planner/calibration.csv (A100 rows:
Megatron-LM SC'21 Table 1, Korthikanti et al. 2022, llm-foundry MPT) — see
docs/planner-calibration.md; everything else in the model is derived from published formulas.
"""

from __future__ import annotations

GEMM_HALF_WIDTH = 64.0
"""Fitted. Per-device GEMM width (columns/inner dimension) at which a GEMM reaches half of
GEMM_PEAK_FRACTION; narrow GEMMs (small h/tp, the head dimension of attention) under-fill
the tensor cores."""

GEMM_HALF_ROWS = 128.0
"""Rows (tokens) at which a GEMM reaches half efficiency: one 128-row CUTLASS/cuBLAS tile
(NVIDIA CUTLASS default threadblock shape 128×128×32). Not fitted."""

ELEMENTWISE_PASSES = 10.0
"""Fitted. HBM traffic of a layer's element-wise kernels over forward and backward, in
multiples of the bytes the layer stores for backward."""

ADAM_BYTES_PER_PARAM = 30.0
"""HBM traffic of one Adam step per parameter: read fp32 grad, master, m, v (16 bytes), write
master, m, v (12) and the bf16 weight copy (2). Derived from the state layout, not fitted."""

HBM_EFFICIENCY = 0.85
"""Fraction of the datasheet HBM bandwidth a streaming kernel reaches (STREAM-like copies
reach ~1.3 of 1.55 TB/s on A100-40GB and ~2.9 of 3.35 TB/s on H100 SXM; NVIDIA forums and
the babel-stream results)."""


def gemm_efficiency(width: float, rows: float, peak_fraction: float) -> float:
    """Fraction of tensor-core peak a GEMM of per-device `width` and `rows` sustains, given
    the device's best-shape fraction `peak_fraction` (Hardware.gemm_fraction)."""
    return peak_fraction * width / (width + GEMM_HALF_WIDTH) * rows / (rows + GEMM_HALF_ROWS)


def attention_efficiency(rows: float, peak_fraction: float) -> float:
    """Fraction of peak the fused attention kernel sustains over `rows` query positions."""
    return peak_fraction * rows / (rows + GEMM_HALF_ROWS)


def memory_seconds(bytes_moved: float, hbm_gbs: float) -> float:
    """Seconds to stream `bytes_moved` through HBM at the achievable bandwidth."""
    return bytes_moved / (hbm_gbs * 1e9 * HBM_EFFICIENCY)
