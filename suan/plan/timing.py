"""Time of one training step: compute, communication, pipeline bubble and optimizer.

Per micro-batch, a pipeline stage runs its layers (L/p, or the uneven counts of stages.py)
forward and backward (plus recomputation), with the tensor-parallel collectives on the critical
path; the last stage adds the logits and the loss. The pipeline runs at the pace of its slowest
stage:

    1F1B:         T = (m + p − 1) · t_stage        (bubble (p−1)/m of the ideal time)
    interleaved:  T = (m + (p − 1)/v) · t_stage    (bubble (p−1)/(v·m), SC'21 §2.2)

Data-parallel gradient traffic overlaps with the last micro-batch's backward (ZeRO 0-2) or,
for ZeRO-3/FSDP, parameter gathers and gradient reduce-scatters overlap with each
micro-batch's compute. Overlap is not free: while a collective runs, its kernels hold SMs and
HBM bandwidth, so the compute it hides behind slows by `OVERLAP_INTERFERENCE` of the
collective's duration (`overlapped_seconds`); traffic longer than the compute is exposed in
full. ZeRO-3 issues one collective per layer and pass (two weight gathers, one gradient
reduce-scatter per micro-batch), each paying NCCL's ring latency (comm.py), which is what
large data-parallel groups of small models feel. The optimizer step streams the local states
through HBM once.
"""

from __future__ import annotations

from dataclasses import dataclass

from suan.plan import comm, efficiency, op_sac
from suan.plan.efficiency import (
    ADAM_BYTES_PER_PARAM,
    attention_efficiency,
    gemm_efficiency,
    memory_seconds,
    ridge_flops_per_byte,
)
from suan.plan.flops import attention_core_flops, layer_gemm_flops, logits_flops
from suan.plan.fp8 import cast_bytes
from suan.plan.hardware import Hardware
from suan.plan.layout import Layout, Workload, microbatches
from suan.plan.memory import (
    LOGITS_BYTES,
    SCORE_BYTES_PER_HEAD_KEY,
    device_params,
    stored_per_token_hidden,
)
from suan.plan.models import ModelSpec
from suan.plan.stages import stage_layers

PARAM_GATHER_BYTES = 2
"""Bytes per weight element all-gathered by ZeRO 1-3 (bf16 weights). The gradient width is
`Workload.grad_reduce_bytes` (2 by default: Megatron-Core with `grad_reduce_in_fp32=False`, the
default since 2023, and FSDP with bf16 reduce_dtype)."""

TP_COLLECTIVES_PER_LAYER = 4
"""All-reduces (or reduce-scatter + all-gather pairs under sequence parallelism) per layer per
micro-batch: two forward, two backward (Megatron-LM; Korthikanti et al. 2022 §4.2.2)."""

TP_RECOMPUTE_COLLECTIVES = 2
"""Extra tensor-parallel collectives when the forward is recomputed in full."""

DESIGNED_OVERLAP_INTERFERENCE = 0.189
"""Fraction of a collective's duration that the compute it runs beside loses when the stack
overlaps it by design (`Layout.tp_overlap`: Transformer Engine's userbuffers;
`Layout.dp_overlap`: Megatron-Core's overlap_grad_reduce / overlap_param_gather and
Megatron-FSDP): collectives running concurrently slow the GEMMs they overlap by 18.9 % on
average (Lee et al., "Characterizing Compute-Communication Overlap in GPU-Accelerated
Distributed Deep Learning", arXiv 2507.03114, 2025). Not fitted. Stacks without designed
overlap pay efficiency.OVERLAP_INTERFERENCE."""

EP_ALL_TO_ALLS_PER_LAYER = 4
"""All-to-alls per MoE layer per micro-batch: dispatch and combine, forward and backward."""

ATTENTION_BACKWARD_FACTOR = 2.5
"""Backward / forward time of the fused attention core (FlashAttention-2 paper, Dao 2023:
the backward does 2.5× the matmul work of the forward, with recomputation of the scores)."""

BACKWARD_FACTOR = 2
"""Backward / forward FLOPs of a linear layer (dgrad + wgrad)."""

ZERO3_GATHERS = 2
"""Parameter all-gathers per micro-batch under ZeRO-3/FSDP: one before the forward and one
before the backward; full recomputation reuses the backward's gathered weights (PyTorch FSDP
unshards a unit once in its pre-backward hook and the checkpointed forward runs inside it),
so with the gradient reduce-scatter the traffic is 1.5 × a DDP all-reduce (ZeRO paper §7.2.2:
ZeRO-3 moves 1.5 × the data of ZeRO-2)."""

@dataclass(frozen=True)
class StepTime:
    """Seconds per optimizer step, split by cause. `total` is their sum."""

    compute: float
    tp_comm: float
    cp_comm: float
    ep_comm: float
    pp_comm: float
    bubble: float
    dp_exposed: float
    optimizer: float

    @property
    def total(self) -> float:
        return (self.compute + self.tp_comm + self.cp_comm + self.ep_comm + self.pp_comm
                + self.bubble + self.dp_exposed + self.optimizer)

    def as_dict(self) -> dict[str, float]:
        keys = ("compute", "tp_comm", "cp_comm", "ep_comm", "pp_comm", "bubble",
                "dp_exposed", "optimizer")
        return {key: getattr(self, key) for key in keys}


@dataclass(frozen=True)
class _Micro:
    """Per micro-batch seconds on one stage: compute, and each exposed collective kind."""

    compute: float
    tp: float
    cp: float
    ep: float


def _tokens(layout: Layout, workload: Workload) -> float:
    return layout.micro_batch * workload.seq / layout.cp


def _gemm_seconds(flops: float, width: float, rows: float, peak_tflops: float,
                  hardware: Hardware, precision: str = "bf16") -> float:
    ridge = ridge_flops_per_byte(peak_tflops, hardware.hbm_gbs)
    efficiency = gemm_efficiency(width, rows, hardware.gemm_fraction_for(precision), ridge)
    return flops / (peak_tflops * 1e12 * efficiency)


def _attention_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                       hardware: Hardware) -> float:
    """Forward seconds of one layer's attention core for one micro-batch: the executed square
    (half of it, and only the sliding window's span, when the kernel skips masked blocks) at
    the kernel's sustained fraction."""
    executed = "causal" if workload.causal_skip else "full"
    flops = attention_core_flops(model, workload.seq, executed,
                                 windowed=workload.causal_skip) * _tokens(layout, workload)
    if not workload.flash_attention:
        return _gemm_seconds(flops / layout.tp, model.head_dim, workload.seq / layout.cp,
                             hardware.bf16_tflops, hardware)
    fraction = (hardware.attention_fraction_flash3 if workload.attention == "flash3"
                else hardware.attention_fraction)
    efficiency = attention_efficiency(workload.seq / layout.cp, fraction)
    return flops / layout.tp / (hardware.bf16_tflops * 1e12 * efficiency)


def _linear_seconds(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
                    moe: bool) -> float:
    """Forward seconds of one layer's linear layers for one micro-batch."""
    tokens = _tokens(layout, workload)
    peak = hardware.peak_tflops(workload.precision)
    flops = layer_gemm_flops(model, moe) * tokens / layout.tp
    precision = workload.precision
    if not moe:
        return _gemm_seconds(flops, model.hidden / layout.tp, tokens, peak, hardware, precision)
    rows = tokens * model.topk * layout.ep / model.num_experts
    width = min(model.hidden, model.expert_ffn / layout.tp)
    return _gemm_seconds(flops, width, max(rows, 1.0), peak, hardware, precision)


def fp8_cast_elements(model: ModelSpec, layout: Layout, moe: bool) -> float:
    """Elements per token one layer casts to FP8 on one device: the inputs of its four linear
    layers in forward (QKV, output projection, MLP up, MLP down) and the gradients of their
    outputs in backward. Routed experts count top-k + shared experts."""
    h, d = model.hidden, model.head_dim
    width = model.expert_ffn if moe else model.ffn
    branches = (model.topk + model.shared_experts) if moe else 1
    up = (2 if model.gated_mlp else 1) * width
    forward = 2 * h + (model.heads * model.v_head_dim + branches * width) / layout.tp
    backward = 2 * h + ((model.heads + 2 * model.kv_heads) * d + branches * up) / layout.tp
    return forward + backward


def _elementwise_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                         hardware: Hardware, moe: bool) -> float:
    """Forward + backward seconds of one layer's memory-bound kernels for one micro-batch,
    plus the FP8 casts of GEMM operands when the run is FP8 (their bytes per element are the
    recipe's, suan.plan.fp8.CAST_BYTES)."""
    per_token = efficiency.ELEMENTWISE_PASSES * stored_per_token_hidden(model, layout, moe)
    if not workload.flash_attention:
        per_token += (efficiency.ELEMENTWISE_PASSES * SCORE_BYTES_PER_HEAD_KEY * model.heads
                      * workload.seq / layout.tp / layout.cp)
    if workload.precision == "fp8":
        per_token += cast_bytes(workload.fp8_recipe) * fp8_cast_elements(model, layout, moe)
    return memory_seconds(per_token * _tokens(layout, workload), hardware.hbm_gbs)


def _layer_seconds(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
                   moe: bool) -> float:
    """Compute seconds of one layer, forward + backward + recomputation, one micro-batch:
    full recompute runs the forward again, selective the attention core, per-op checkpointing
    (`op`) its unsaved matmuls and the element-wise forward."""
    linear = _linear_seconds(model, layout, workload, hardware, moe)
    attention = _attention_seconds(model, layout, workload, hardware)
    elementwise = _elementwise_seconds(model, layout, workload, hardware, moe)
    total = ((1 + BACKWARD_FACTOR) * linear + (1 + ATTENTION_BACKWARD_FACTOR) * attention
             + elementwise)
    if layout.recompute == "full":
        total += linear + attention + elementwise / (1 + BACKWARD_FACTOR)
    elif layout.recompute == "selective":
        total += attention
    elif layout.recompute == "op":
        share = (op_sac.recomputed_attention_flops(model) / layer_gemm_flops(model, True)
                 if moe else op_sac.recomputed_share(model))
        total += share * linear
        total += elementwise / (1 + BACKWARD_FACTOR)
    return total


def _logits_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                    hardware: Hardware) -> float:
    """Forward + backward seconds of the output projection and the fp32 loss. The output
    projection stays in BF16 in FP8 runs: Megatron-LM and Transformer Engine apply FP8 to the
    transformer layers' linears only (`fp8_autocast` around the decoder block)."""
    tokens = _tokens(layout, workload)
    flops = (1 + BACKWARD_FACTOR) * logits_flops(model) * tokens / layout.tp
    gemm = _gemm_seconds(flops, model.hidden, tokens, hardware.bf16_tflops, hardware)
    loss_bytes = efficiency.ELEMENTWISE_PASSES * LOGITS_BYTES * model.vocab / layout.tp * tokens
    return gemm + memory_seconds(loss_bytes, hardware.hbm_gbs)


def _tp_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                hardware: Hardware) -> float:
    """Tensor-parallel collective seconds one layer adds for one micro-batch: all on the
    critical path, or with `Layout.tp_overlap` hidden behind the layer's linear layers at
    DESIGNED_OVERLAP_INTERFERENCE of their duration (whatever outlasts the GEMMs stays
    exposed)."""
    count = TP_COLLECTIVES_PER_LAYER
    count += TP_RECOMPUTE_COLLECTIVES if layout.recompute == "full" else 0
    size = 2 * _tokens(layout, workload) * model.hidden
    traffic = count * comm.all_reduce(size, layout.tp, hardware)
    if not layout.tp_overlap or layout.tp == 1:
        return traffic
    moe_share = model.moe_layers / model.num_layers
    linear = (1 - moe_share) * _linear_seconds(model, layout, workload, hardware, False)
    if moe_share:
        linear += moe_share * _linear_seconds(model, layout, workload, hardware, True)
    recompute = 1 if layout.recompute == "full" else 0
    gemms = (1 + BACKWARD_FACTOR + recompute) * linear
    return overlapped_seconds(traffic, gemms, DESIGNED_OVERLAP_INTERFERENCE)


def _cp_seconds(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
                attention: float) -> float:
    """Context-parallel seconds one layer adds for one micro-batch (`Layout.cp_comm`):

    - `p2p`: cp − 1 K/V chunk passes round the ring, overlapped with the attention core;
      backward passes K/V and their gradients (twice the bytes);
    - `all_gather`: the whole sequence's K/V gathered before attention and their gradients
      reduce-scattered in backward (Llama 3's CP), on the critical path;
    - `a2a`: Q, K, V and the output (forward) and their gradients (backward) re-split from
      sequence to heads by all-to-alls over the cp group (DeepSpeed-Ulysses), on the
      critical path."""
    if layout.cp == 1:
        return 0.0
    tokens = _tokens(layout, workload)
    kv_width = model.kv_heads * (model.head_dim + model.v_head_dim)
    chunk = 2 * tokens * kv_width / layout.tp
    if layout.cp_comm == "all_gather":
        gathered = chunk * layout.cp
        return 2 * comm.all_gather(gathered, layout.cp, hardware, layout.tp)
    if layout.cp_comm == "a2a":
        q_out = 2 * tokens * model.heads * (model.head_dim + model.v_head_dim) / layout.tp
        return 2 * comm.all_to_all(chunk + q_out, layout.cp, hardware, layout.tp)
    step = comm.send_recv(chunk, hardware, layout.tp)
    forward = overlapped_seconds((layout.cp - 1) * step, attention)
    backward = overlapped_seconds(2 * (layout.cp - 1) * step,
                                  ATTENTION_BACKWARD_FACTOR * attention)
    return forward + backward


def _ep_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                hardware: Hardware) -> float:
    """All-to-all seconds of one MoE layer for one micro-batch."""
    if layout.ep == 1:
        return 0.0
    size = 2 * _tokens(layout, workload) * model.topk * model.hidden / layout.tp
    stride = layout.tp * layout.cp
    return EP_ALL_TO_ALLS_PER_LAYER * comm.all_to_all(size, layout.ep, hardware, stride)


def _micro(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware) -> _Micro:
    """One micro-batch on the slowest stage: the most layers, or the last stage's layers plus
    the logits and loss, whichever takes longer (stages.py gives the per-stage layers)."""
    counts = stage_layers(model.num_layers, layout)
    moe_share = model.moe_layers / model.num_layers
    layer = (1 - moe_share) * _layer_seconds(model, layout, workload, hardware, False)
    if moe_share:
        layer += moe_share * _layer_seconds(model, layout, workload, hardware, True)
    logits = _logits_seconds(model, layout, workload, hardware)
    per_stage = float(max(counts))
    compute = per_stage * layer
    if counts[-1] * layer + logits >= compute:
        per_stage = float(counts[-1])
        compute = per_stage * layer + logits
    attention = _attention_seconds(model, layout, workload, hardware)
    return _Micro(
        compute=compute,
        tp=per_stage * _tp_seconds(model, layout, workload, hardware),
        cp=per_stage * _cp_seconds(model, layout, workload, hardware, attention),
        ep=per_stage * moe_share * _ep_seconds(model, layout, workload, hardware),
    )


def _pp_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                hardware: Hardware) -> float:
    """Point-to-point seconds per micro-batch per stage: activations forward, grads back."""
    if layout.pp == 1:
        return 0.0
    size = 2 * _tokens(layout, workload) * model.hidden / layout.tp
    stride = layout.tp * layout.cp * layout.dp
    return 2 * layout.vpp * comm.send_recv(size, hardware, stride)


def _zero3_units(model: ModelSpec, layout: Layout) -> int:
    """Collective calls per gather or reduce pass under ZeRO-3: one FSDP unit per layer of the
    stage plus the root unit (embedding, final norm, output projection)."""
    return max(stage_layers(model.num_layers, layout)) + 1


def _sync_seconds(params: float, ranks: int, stride: int, layout: Layout, workload: Workload,
                  hardware: Hardware, units: int) -> float:
    """Seconds of one data-parallel synchronisation of `params` parameters over `ranks` ranks:
    ZeRO 0 all-reduces the gradients; ZeRO 1-2 reduce-scatter them and all-gather the updated
    bf16 weights; ZeRO-3 gathers the weights ZERO3_GATHERS times (once when it keeps them for
    the step, `Layout.gather_once`) and reduce-scatters the gradients, each pass one collective
    per FSDP unit (per micro-batch, or per step when gathering once)."""
    grads = workload.grad_reduce_bytes * params
    if layout.zero == 0:
        return comm.all_reduce(grads, ranks, hardware, stride)
    weights = PARAM_GATHER_BYTES * params
    if layout.zero < 3:
        return (comm.all_gather(grads, ranks, hardware, stride)
                + comm.all_gather(weights, ranks, hardware, stride))
    gathers = 1 if layout.gather_once else ZERO3_GATHERS
    return (gathers * comm.all_gather(weights, ranks, hardware, stride, units)
            + comm.all_gather(grads, ranks, hardware, stride, units))


def _dp_groups(model: ModelSpec, layout: Layout) -> list[tuple[float, int, int]]:
    """(parameters, ranks, stride) of each data-parallel group a device belongs to: dense
    weights over dp·cp ranks tp apart; routed experts over dp·cp/ep ranks tp·ep apart."""
    dense, experts = device_params(model, layout)
    ranks = layout.dp * layout.cp
    groups = [(dense, ranks, layout.tp)]
    if experts:
        groups.append((experts, ranks // layout.ep, layout.tp * layout.ep))
    return groups


def _dp_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                hardware: Hardware) -> float:
    """Data-parallel traffic seconds per step (ZeRO 0-2) or per micro-batch (ZeRO-3)."""
    units = _zero3_units(model, layout)
    return sum(_sync_seconds(params, ranks, stride, layout, workload, hardware, units)
               for params, ranks, stride in _dp_groups(model, layout))


def overlapped_seconds(traffic: float, compute: float,
                       interference: float = efficiency.OVERLAP_INTERFERENCE) -> float:
    """Seconds a collective of `traffic` seconds adds when overlapped with `compute` seconds:
    the slowdown (`interference` × the hidden part) of the compute it runs beside plus
    whatever outlasts the compute."""
    hidden = min(traffic, compute)
    return interference * hidden + (traffic - hidden)


def _dp_exposed(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
                micro: _Micro, m: int) -> float:
    """Data-parallel seconds added after overlap with backward (or per micro-batch, ZeRO-3;
    once per step when ZeRO-3 gathers once, `Layout.gather_once`)."""
    traffic = _dp_seconds(model, layout, workload, hardware)
    backward = micro.compute * BACKWARD_FACTOR / (1 + BACKWARD_FACTOR)
    cost = (DESIGNED_OVERLAP_INTERFERENCE if layout.dp_overlap
            else efficiency.OVERLAP_INTERFERENCE)
    if layout.zero == 3 and layout.gather_once:
        return overlapped_seconds(traffic, micro.compute, cost)
    if layout.zero == 3:
        return m * overlapped_seconds(traffic, micro.compute, cost)
    return overlapped_seconds(traffic, backward, cost)


def _optimizer_seconds(model: ModelSpec, layout: Layout, hardware: Hardware) -> float:
    dense, experts = device_params(model, layout)
    shards = layout.dp * layout.cp if layout.zero >= 1 else 1
    expert_shards = max(1, shards // layout.ep) if layout.zero >= 1 else 1
    params = dense / shards + experts / expert_shards
    return memory_seconds(ADAM_BYTES_PER_PARAM * params, hardware.hbm_gbs)


def step_time(model: ModelSpec, layout: Layout, workload: Workload,
              hardware: Hardware) -> StepTime:
    """Seconds of one optimizer step, split by cause."""
    m = microbatches(layout, workload)
    micro = _micro(model, layout, workload, hardware)
    pp = _pp_seconds(model, layout, workload, hardware)
    stage = micro.compute + micro.tp + micro.cp + micro.ep + pp
    bubble_stages = (layout.pp - 1) / layout.vpp
    return StepTime(
        compute=m * micro.compute,
        tp_comm=m * micro.tp,
        cp_comm=m * micro.cp,
        ep_comm=m * micro.ep,
        pp_comm=m * pp,
        bubble=bubble_stages * stage,
        dp_exposed=_dp_exposed(model, layout, workload, hardware, micro, m),
        optimizer=_optimizer_seconds(model, layout, hardware),
    )


def bubble_fraction(pp: int, microbatches_per_step: int, vpp: int = 1) -> float:
    """Pipeline bubble relative to the ideal (bubble-free) time: (p − 1)/(v · m)."""
    return (pp - 1) / (vpp * microbatches_per_step)
