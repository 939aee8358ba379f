"""Time of one training step: compute, communication, pipeline bubble and optimizer.

Per micro-batch, a pipeline stage runs L/p layers forward and backward (plus recomputation),
with the tensor-parallel collectives on the critical path; the last stage adds the logits and
the loss. The pipeline runs at the pace of its slowest stage:

    1F1B:         T = (m + p − 1) · t_stage        (bubble (p−1)/m of the ideal time)
    interleaved:  T = (m + (p − 1)/v) · t_stage    (bubble (p−1)/(v·m), SC'21 §2.2)

Data-parallel gradient traffic overlaps with the last micro-batch's backward (ZeRO 0-2) or,
for ZeRO-3/FSDP, parameter gathers and gradient reduce-scatters overlap with each
micro-batch's compute; only the excess is exposed. The optimizer step streams the local
states through HBM once.
"""

from __future__ import annotations

from dataclasses import dataclass

from suan.plan import comm, efficiency
from suan.plan.efficiency import (
    ADAM_BYTES_PER_PARAM,
    attention_efficiency,
    gemm_efficiency,
    memory_seconds,
)
from suan.plan.flops import attention_core_flops, layer_gemm_flops, logits_flops
from suan.plan.hardware import Hardware
from suan.plan.layout import Layout, Workload, microbatches
from suan.plan.memory import LOGITS_BYTES, device_params, stored_per_token_hidden
from suan.plan.models import ModelSpec

GRAD_REDUCE_BYTES = 2
"""Bytes per gradient element on the wire (bf16 reduction: FSDP mixed precision, Megatron-Core
with `grad_reduce_in_fp32=False`, the default since 2023)."""

TP_COLLECTIVES_PER_LAYER = 4
"""All-reduces (or reduce-scatter + all-gather pairs under sequence parallelism) per layer per
micro-batch: two forward, two backward (Megatron-LM; Korthikanti et al. 2022 §4.2.2)."""

TP_RECOMPUTE_COLLECTIVES = 2
"""Extra tensor-parallel collectives when the forward is recomputed in full."""

EP_ALL_TO_ALLS_PER_LAYER = 4
"""All-to-alls per MoE layer per micro-batch: dispatch and combine, forward and backward."""

ATTENTION_BACKWARD_FACTOR = 2.5
"""Backward / forward time of the fused attention core (FlashAttention-2 paper, Dao 2023:
the backward does 2.5× the matmul work of the forward, with recomputation of the scores)."""

BACKWARD_FACTOR = 2

EXECUTED_ATTENTION = "full"
"""Attention-core work actually executed: the full s² square. Megatron's fused softmax and the
Triton FlashAttention kernel with ALiBi bias that the llm-foundry measurements use compute the
masked half; kernels that skip it (FlashAttention-2/3 causal) make long-sequence estimates
conservative by up to 2× on the attention term."""
"""Backward / forward FLOPs of a linear layer (dgrad + wgrad)."""


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
                  hardware: Hardware) -> float:
    efficiency = gemm_efficiency(width, rows, hardware.gemm_fraction)
    return flops / (peak_tflops * 1e12 * efficiency)


def _attention_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                       hardware: Hardware) -> float:
    """Forward seconds of one layer's attention core for one micro-batch."""
    flops = attention_core_flops(model, workload.seq, EXECUTED_ATTENTION) * _tokens(
        layout, workload)
    if not workload.flash_attention:
        return _gemm_seconds(flops / layout.tp, model.head_dim, workload.seq / layout.cp,
                             hardware.bf16_tflops, hardware)
    efficiency = attention_efficiency(workload.seq / layout.cp, hardware.attention_fraction)
    return flops / layout.tp / (hardware.bf16_tflops * 1e12 * efficiency)


def _linear_seconds(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
                    moe: bool) -> float:
    """Forward seconds of one layer's linear layers for one micro-batch."""
    tokens = _tokens(layout, workload)
    peak = hardware.peak_tflops(workload.precision)
    flops = layer_gemm_flops(model, moe) * tokens / layout.tp
    if not moe:
        return _gemm_seconds(flops, model.hidden / layout.tp, tokens, peak, hardware)
    rows = tokens * model.topk * layout.ep / model.num_experts
    width = min(model.hidden, model.expert_ffn / layout.tp)
    return _gemm_seconds(flops, width, max(rows, 1.0), peak, hardware)


def _elementwise_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                         hardware: Hardware, moe: bool) -> float:
    """Forward + backward seconds of one layer's memory-bound kernels for one micro-batch."""
    per_token = stored_per_token_hidden(model, layout, moe)
    if not workload.flash_attention:
        per_token += 5 * model.heads * workload.seq / layout.tp / layout.cp
    return memory_seconds(efficiency.ELEMENTWISE_PASSES * per_token * _tokens(layout, workload),
                          hardware.hbm_gbs)


def _layer_seconds(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
                   moe: bool) -> float:
    """Compute seconds of one layer, forward + backward + recomputation, one micro-batch."""
    linear = _linear_seconds(model, layout, workload, hardware, moe)
    attention = _attention_seconds(model, layout, workload, hardware)
    elementwise = _elementwise_seconds(model, layout, workload, hardware, moe)
    total = ((1 + BACKWARD_FACTOR) * linear + (1 + ATTENTION_BACKWARD_FACTOR) * attention
             + elementwise)
    if layout.recompute == "full":
        total += linear + attention + elementwise / (1 + BACKWARD_FACTOR)
    elif layout.recompute == "selective":
        total += attention
    return total


def _logits_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                    hardware: Hardware) -> float:
    """Forward + backward seconds of the output projection and the fp32 loss."""
    tokens = _tokens(layout, workload)
    flops = (1 + BACKWARD_FACTOR) * logits_flops(model) * tokens / layout.tp
    peak = hardware.peak_tflops(workload.precision)
    gemm = _gemm_seconds(flops, model.hidden, tokens, peak, hardware)
    loss_bytes = efficiency.ELEMENTWISE_PASSES * LOGITS_BYTES * model.vocab / layout.tp * tokens
    return gemm + memory_seconds(loss_bytes, hardware.hbm_gbs)


def _tp_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                hardware: Hardware) -> float:
    """Tensor-parallel collective seconds of one layer for one micro-batch."""
    count = TP_COLLECTIVES_PER_LAYER
    count += TP_RECOMPUTE_COLLECTIVES if layout.recompute == "full" else 0
    size = 2 * _tokens(layout, workload) * model.hidden
    return count * comm.all_reduce(size, layout.tp, hardware)


def _cp_seconds(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
                attention: float) -> float:
    """Exposed ring-attention seconds of one layer: K/V chunks not hidden behind attention."""
    if layout.cp == 1:
        return 0.0
    chunk = 2 * 2 * _tokens(layout, workload) * model.kv_heads * model.head_dim / layout.tp
    step = comm.send_recv(chunk, hardware, layout.tp)
    forward = max(0.0, (layout.cp - 1) * step - attention)
    backward = max(0.0, 2 * (layout.cp - 1) * step - ATTENTION_BACKWARD_FACTOR * attention)
    return forward + backward


def _ep_seconds(model: ModelSpec, layout: Layout, workload: Workload,
                hardware: Hardware) -> float:
    """All-to-all seconds of one MoE layer for one micro-batch."""
    if layout.ep == 1:
        return 0.0
    size = 2 * _tokens(layout, workload) * model.topk * model.hidden / layout.tp
    stride = layout.tp * layout.cp
    return EP_ALL_TO_ALLS_PER_LAYER * comm.all_to_all(size, layout.ep, hardware, stride)


def _micro(model: ModelSpec, layout: Layout, workload: Workload, hardware: Hardware,
           last_stage: bool) -> _Micro:
    """One micro-batch on one stage (the last stage also runs the logits)."""
    per_stage = model.num_layers / layout.pp
    moe_share = model.moe_layers / model.num_layers
    layer = (1 - moe_share) * _layer_seconds(model, layout, workload, hardware, False)
    if moe_share:
        layer += moe_share * _layer_seconds(model, layout, workload, hardware, True)
    compute = per_stage * layer
    if last_stage:
        compute += _logits_seconds(model, layout, workload, hardware)
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


def _dp_seconds(model: ModelSpec, layout: Layout, hardware: Hardware) -> float:
    """Data-parallel traffic seconds per step (ZeRO 0-2) or per micro-batch (ZeRO-3)."""
    ranks = layout.dp * layout.cp
    dense, experts = device_params(model, layout)
    stride = layout.tp
    grads = GRAD_REDUCE_BYTES * dense
    seconds = comm.all_reduce(grads, ranks, hardware, stride)
    expert_ranks = ranks // layout.ep
    seconds += comm.all_reduce(GRAD_REDUCE_BYTES * experts, expert_ranks, hardware,
                               stride * layout.ep)
    if layout.zero == 3:
        gathers = 3 if layout.recompute == "full" else 2
        seconds *= (1 + gathers) / 2
    return seconds


def _dp_exposed(model: ModelSpec, layout: Layout, hardware: Hardware, micro: _Micro,
                m: int) -> float:
    """Data-parallel seconds left after overlap with backward (or per micro-batch, ZeRO-3)."""
    traffic = _dp_seconds(model, layout, hardware)
    backward = micro.compute * BACKWARD_FACTOR / (1 + BACKWARD_FACTOR)
    if layout.zero == 3:
        return m * max(0.0, traffic - micro.compute)
    return max(0.0, traffic - backward)


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
    micro = _micro(model, layout, workload, hardware, last_stage=True)
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
        dp_exposed=_dp_exposed(model, layout, hardware, micro, m),
        optimizer=_optimizer_seconds(model, layout, hardware),
    )


def bubble_fraction(pp: int, microbatches_per_step: int, vpp: int = 1) -> float:
    """Pipeline bubble relative to the ideal (bubble-free) time: (p − 1)/(v · m)."""
    return (pp - 1) / (vpp * microbatches_per_step)
