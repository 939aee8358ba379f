"""Memory per device: model states by ZeRO stage and activations by Korthikanti et al. 2022.

The device reported is the most loaded one, the first pipeline stage: it holds the input
embedding and, under 1F1B, the most micro-batches in flight (perf-model.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from suan.plan.layout import Layout, Workload, microbatches
from suan.plan.models import ModelSpec

GIB = 2**30


@dataclass(frozen=True)
class StateBytes:
    """Bytes per parameter of the model states under mixed-precision Adam."""

    param: float
    grad: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.param + self.grad + self.optimizer


MEGATRON_STATES = StateBytes(param=2, grad=4, optimizer=12)
"""Megatron-LM (`theoretical_memory_usage.py`): bf16 weights, fp32 main gradients, fp32 master
weights + Adam m + v: 18 bytes/param, 6 + 12/DP with the distributed optimizer (ZeRO-1)."""

ZERO_PAPER_STATES = StateBytes(param=2, grad=2, optimizer=12)
"""ZeRO paper (Rajbhandari et al. 2020, §3.1, K = 12): fp16 weights and gradients plus fp32
master weights, momentum and variance: 16 bytes/param."""

ACTIVATION_BYTES = 2
"""Bytes per stored activation element (bf16/fp16; FP8 runs keep bf16 activations here)."""

KORTHIKANTI_REPLICATED = 10
"""Bytes per token per hidden unit of a layer that tensor parallelism does not split: two
LayerNorm inputs (4), QKV and MLP inputs (4), two dropout masks (2) (Korthikanti Table 2)."""

SCORE_BYTES_PER_HEAD_KEY = 5
"""Bytes per token per head per key position of the materialised attention core: softmax
input (2) and output (2) plus the dropout mask (1) (Korthikanti et al. 2022, the 5as/h term)."""

LOGITS_BYTES = 4
"""Bytes per logit kept for the fp32 cross-entropy (Megatron `theoretical_memory_usage.py`):
Megatron's fused vocab-parallel cross-entropy works in place on one fp32 copy."""

EAGER_LOSS_LOGIT_BYTES = 14
"""Bytes per logit alive at the loss's peak with PyTorch's eager `F.cross_entropy` on
upcast logits (torchtitan, HuggingFace): the bf16 logits (2), their fp32 copy (4), the
log-softmax saved for backward (4) and its fp32 gradient (4)."""

MEMORY_HEADROOM = 0.10
"""Fraction of device memory kept free for the CUDA/CANN context, collective buffers and
allocator fragmentation when deciding whether a layout fits (PyTorch caching allocator
fragmentation is typically 5-10 %; Megatron's estimator adds 5 % to activations alone)."""


@dataclass(frozen=True)
class Memory:
    """Bytes per device by kind; `total` is their sum."""

    weights: float
    gradients: float
    optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    def gib(self) -> dict[str, float]:
        """The breakdown in GiB, for reports."""
        parts = {"weights": self.weights, "gradients": self.gradients,
                 "optimizer": self.optimizer, "activations": self.activations}
        return {key: value / GIB for key, value in parts.items()}


def device_params(model: ModelSpec, layout: Layout) -> tuple[float, float]:
    """(dense, expert) parameters held by the first pipeline stage's device.

    Dense layers are split by pp and tp; the input embedding sits on the first stage (and the
    output projection too when pp = 1). Routed experts are split by pp, ep and tp (expert
    tensor parallelism = tp, Megatron-Core's default).
    """
    per_layer_dense = model.layer_params(False)
    dense_layers = model.dense_layers * per_layer_dense
    moe_layers = model.moe_layers * (model.layer_params(True)
                                     - model.num_experts * model.expert_params())
    embedding = model.embedding_params() if layout.pp == 1 else model.vocab * model.hidden
    dense = ((dense_layers + moe_layers) / layout.pp + embedding) / layout.tp
    experts = model.routed_expert_params_total() / (layout.pp * layout.ep * layout.tp)
    return dense, experts


def model_states(model: ModelSpec, layout: Layout, states: StateBytes = MEGATRON_STATES,
                 ) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes per device for the layout's ZeRO stage.

    ZeRO shards over the data-parallel group (dp·cp ranks for dense weights, dp·cp/ep for
    experts): stage 1 the optimizer, stage 2 also gradients, stage 3 also weights. With the
    ZeRO paper's bytes this gives 16Ψ, 4Ψ + 12Ψ/N, 2Ψ + 14Ψ/N and 16Ψ/N.
    """
    dense, experts = device_params(model, layout)
    shards = layout.dp * layout.cp
    expert_shards = max(1, shards // layout.ep)

    def sharded(stage: int, per_param: float) -> float:
        if layout.zero < stage:
            return per_param * (dense + experts)
        return per_param * (dense / shards + experts / expert_shards)

    weights = sharded(3, states.param)
    if layout.zero == 3:
        weights += states.param * 2 * (dense + experts) / max(1, model.num_layers // layout.pp)
    return weights, sharded(2, states.grad), sharded(1, states.optimizer)


def stored_per_token_hidden(model: ModelSpec, layout: Layout, moe: bool) -> float:
    """Bytes stored per token by one layer without recompute and without the attention scores.

    Generalises Korthikanti's `10 + 24/t` (× s·b·h) to GQA, SwiGLU and MoE: the tensor-parallel
    part is Q, K, V and the output-projection input (8h for MHA) plus the MLP's saved tensors
    (2·2f for GeLU: its input and output; 3·2f for SwiGLU: gate, up and their product).
    MLA (DeepSeek) stores K at the query/key width d and V at its own width, plus its two
    low-rank latents (the inputs of the up-projections, q_lora_rank + kv_lora_rank).
    """
    h, d, v = model.hidden, model.head_dim, model.v_head_dim
    attention = 2 * (model.heads * d + model.kv_heads * (d + v)) + 2 * model.heads * v
    attention += 2 * (model.q_lora_rank + model.kv_lora_rank)
    mlp_per_width = 2 * (3 if model.gated_mlp else 2)
    if moe:
        mlp = (model.topk + model.shared_experts) * mlp_per_width * model.expert_ffn
        mlp += 2 * h * model.topk
    else:
        mlp = mlp_per_width * model.ffn
    split = (attention + mlp) / layout.tp
    replicated = KORTHIKANTI_REPLICATED * h
    if layout.sequence_parallel:
        replicated /= layout.tp
    return split + replicated


def score_bytes_per_token(model: ModelSpec, layout: Layout, workload: Workload) -> float:
    """Bytes per token of materialised attention scores (0 with FlashAttention or selective)."""
    if workload.flash_attention or layout.recompute != "none":
        return 0.0
    return SCORE_BYTES_PER_HEAD_KEY * model.heads * workload.seq / layout.tp / layout.cp


def layer_activation_bytes(model: ModelSpec, layout: Layout, workload: Workload,
                           moe: bool) -> float:
    """Activation bytes one layer keeps for one micro-batch on one device."""
    tokens = layout.micro_batch * workload.seq / layout.cp
    full = stored_per_token_hidden(model, layout, moe) + score_bytes_per_token(
        model, layout, workload)
    if layout.recompute == "full":
        checkpoint = ACTIVATION_BYTES * model.hidden
        if layout.sequence_parallel:
            checkpoint /= layout.tp
        return tokens * checkpoint
    return tokens * full


def in_flight_factor(layout: Layout, workload: Workload) -> float:
    """Micro-batches' worth of a stage's layers the first stage holds (× its L/p layers).

    1F1B: min(m, p); interleaved: × (1 + (p−1)/(p·v)) (Korthikanti §4.2.3).
    """
    m = microbatches(layout, workload)
    held = float(min(m, layout.pp))
    if layout.vpp > 1:
        held *= 1 + (layout.pp - 1) / (layout.pp * layout.vpp)
    return held


def activation_bytes(model: ModelSpec, layout: Layout, workload: Workload) -> float:
    """Activation bytes on the first pipeline stage's device."""
    dense_share = model.dense_layers / model.num_layers
    per_layer = dense_share * layer_activation_bytes(model, layout, workload, False)
    if model.is_moe:
        per_layer += (1 - dense_share) * layer_activation_bytes(model, layout, workload, True)
    stage_layers = model.num_layers / layout.pp
    total = per_layer * stage_layers * in_flight_factor(layout, workload)
    tokens = layout.micro_batch * workload.seq / layout.cp
    if layout.recompute == "full":
        working = stored_per_token_hidden(model, layout, model.is_moe) + score_bytes_per_token(
            model, replace(layout, recompute="none"), workload)
        total += tokens * working
    if layout.pp == 1:
        per_logit = LOGITS_BYTES if workload.fused_loss else EAGER_LOSS_LOGIT_BYTES
        total += tokens * (LOGITS_BYTES * model.hidden + per_logit * model.vocab) / layout.tp
    return total


def memory_per_device(model: ModelSpec, layout: Layout, workload: Workload,
                      states: StateBytes = MEGATRON_STATES) -> Memory:
    """The memory breakdown of the most loaded device."""
    weights, grads, optimizer = model_states(model, layout, states)
    return Memory(weights, grads, optimizer, activation_bytes(model, layout, workload))


def usable_bytes(memory_gib: float) -> float:
    """Device memory a plan may fill: capacity less MEMORY_HEADROOM."""
    return memory_gib * GIB * (1 - MEMORY_HEADROOM)
