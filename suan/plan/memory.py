"""Memory per device: model states by ZeRO stage and activations by Korthikanti et al. 2022.

The device reported is the most loaded one. Under 1F1B stage i holds min(m, p − i)
micro-batches in flight, the first stage also the input embedding and the last the output
projection and the logits (perf-model.md §3); with even stages the first is the most loaded,
with uneven ones (stages.py) the first, the last or the stage with the most layers may be, so
all three are computed and the largest is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from suan.plan import op_sac
from suan.plan.layout import Layout, Workload, microbatches
from suan.plan.models import ModelSpec
from suan.plan.stages import stage_layers

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


def _share(model: ModelSpec, layout: Layout, stage: int) -> float:
    """The fraction of the model's layers pipeline stage `stage` holds."""
    if layout.pp == 1:
        return 1.0
    return stage_layers(model.num_layers, layout)[stage] / model.num_layers


def device_params(model: ModelSpec, layout: Layout, stage: int = 0) -> tuple[float, float]:
    """(dense, expert) parameters held by a device of pipeline stage `stage` (default first).

    Dense layers are split by the stage's share of the layers and by tp; the input embedding
    sits on the first stage and the output projection on the last (both on one when pp = 1).
    Routed experts are split likewise and by ep and tp (expert tensor parallelism = tp,
    Megatron-Core's default).
    """
    per_layer_dense = model.layer_params(False)
    dense_layers = model.dense_layers * per_layer_dense
    moe_layers = model.moe_layers * (model.layer_params(True)
                                     - model.num_experts * model.expert_params())
    share = _share(model, layout, stage)
    if layout.pp == 1:
        embedding = model.embedding_params()
    else:
        ends = (stage == 0) + (stage == layout.pp - 1)
        embedding = ends * model.vocab * model.hidden
    dense = ((dense_layers + moe_layers) * share + embedding) / layout.tp
    experts = model.routed_expert_params_total() * share / (layout.ep * layout.tp)
    return dense, experts


def model_states(model: ModelSpec, layout: Layout, states: StateBytes = MEGATRON_STATES,
                 stage: int = 0) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes per device for the layout's ZeRO stage.

    ZeRO shards over the data-parallel group (dp·cp ranks for dense weights, dp·cp/ep for
    experts): stage 1 the optimizer, stage 2 also gradients, stage 3 also weights. With the
    ZeRO paper's bytes this gives 16Ψ, 4Ψ + 12Ψ/N, 2Ψ + 14Ψ/N and 16Ψ/N. ZeRO-3 adds two
    layers' gathered weights, or with `gather_once` the whole stage's gathered weights and its
    unsharded gradients.
    """
    dense, experts = device_params(model, layout, stage)
    shards = layout.dp * layout.cp
    expert_shards = max(1, shards // layout.ep)

    def sharded(stage: int, per_param: float) -> float:
        if layout.zero < stage:
            return per_param * (dense + experts)
        return per_param * (dense / shards + experts / expert_shards)

    weights = sharded(3, states.param)
    grads = sharded(2, states.grad)
    if layout.zero == 3 and layout.gather_once:
        weights += states.param * (dense + experts)
        grads += states.grad * (dense + experts)
    elif layout.zero == 3:
        layers = max(1, round(_share(model, layout, stage) * model.num_layers))
        weights += states.param * 2 * (dense + experts) / layers
    return weights, grads, sharded(1, states.optimizer)


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
    """Activation bytes one layer keeps for one micro-batch on one device: everything
    (`none`), no s² scores (`selective`), its input (`full`), or what per-op checkpointing
    saves (`op`, suan.plan.op_sac; an MoE layer as `selective`)."""
    tokens = layout.micro_batch * workload.seq / layout.cp
    full = stored_per_token_hidden(model, layout, moe) + score_bytes_per_token(
        model, layout, workload)
    if layout.recompute == "full":
        checkpoint = ACTIVATION_BYTES * model.hidden
        if layout.sequence_parallel:
            checkpoint /= layout.tp
        return tokens * checkpoint
    if layout.recompute == "op" and not moe:
        return tokens * op_sac.stored_per_token(model, layout)
    return tokens * full


def in_flight_factor(layout: Layout, workload: Workload, stage: int = 0) -> float:
    """Micro-batches' worth of its layers pipeline stage `stage` holds (default the first).

    1F1B: min(m, p − stage); interleaved: × (1 + (p−1)/(p·v)) (Korthikanti §4.2.3).
    """
    m = microbatches(layout, workload)
    held = float(min(m, layout.pp - stage))
    if layout.vpp > 1:
        held *= 1 + (layout.pp - 1) / (layout.pp * layout.vpp)
    return held


def activation_bytes(model: ModelSpec, layout: Layout, workload: Workload,
                     stage: int = 0) -> float:
    """Activation bytes on a device of pipeline stage `stage` (default the first)."""
    dense_share = model.dense_layers / model.num_layers
    per_layer = dense_share * layer_activation_bytes(model, layout, workload, False)
    if model.is_moe:
        per_layer += (1 - dense_share) * layer_activation_bytes(model, layout, workload, True)
    layers = _share(model, layout, stage) * model.num_layers
    total = per_layer * layers * in_flight_factor(layout, workload, stage)
    tokens = layout.micro_batch * workload.seq / layout.cp
    if layout.recompute == "full":
        working = stored_per_token_hidden(model, layout, model.is_moe) + score_bytes_per_token(
            model, replace(layout, recompute="none"), workload)
        total += tokens * working
    if stage == layout.pp - 1:
        per_logit = LOGITS_BYTES if workload.fused_loss else EAGER_LOSS_LOGIT_BYTES
        total += tokens * (LOGITS_BYTES * model.hidden + per_logit * model.vocab) / layout.tp
    return total


def memory_per_device(model: ModelSpec, layout: Layout, workload: Workload,
                      states: StateBytes = MEGATRON_STATES) -> Memory:
    """The memory breakdown of the most loaded device: the first stage, the last or the one
    with the most layers."""
    if layout.pp == 1:
        return _stage_memory(model, layout, workload, states, 0)
    counts = stage_layers(model.num_layers, layout)
    stages = {0, layout.pp - 1, counts.index(max(counts))}
    return max((_stage_memory(model, layout, workload, states, stage) for stage in stages),
               key=lambda memory: memory.total)


def _stage_memory(model: ModelSpec, layout: Layout, workload: Workload, states: StateBytes,
                  stage: int) -> Memory:
    weights, grads, optimizer = model_states(model, layout, states, stage)
    return Memory(weights, grads, optimizer, activation_bytes(model, layout, workload, stage))


def usable_bytes(memory_gib: float) -> float:
    """Device memory a plan may fill: capacity less MEMORY_HEADROOM."""
    return memory_gib * GIB * (1 - MEMORY_HEADROOM)
