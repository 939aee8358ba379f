"""Floating-point operations of training, per token: the one count Suan uses.

`model_flops_per_token` is behind `suan plan estimate`'s MFU, the planner's search, and
goodput's program MFU (through `suan.plan.use.flops_per_token`); nothing else counts FLOPs.

Conventions (perf-model.md §2):

- A matmul of an (m × k) by (k × n) matrix is 2·m·k·n FLOPs; training is 3 × the forward
  (forward, activation gradient, weight gradient).
- **Model FLOPs** (for MFU, PaLM's definition) count no recomputation. The attention core
  (QKᵀ and AV) is counted as the **full, non-causal square** by default: 4·h·s FLOPs per token
  per layer forward, i.e. the `6N + 12·L·h·s` rule of PaLM, llm-foundry and Megatron SC'21.
  `convention="causal"` halves it, as Megatron-LM's current `num_floating_point_operations`.
- **Hardware FLOPs** (for HFU) add the recomputed forward: the whole forward without the
  logits for full recompute (HFU = 4/3 MFU, SC'21 Eq. 3), the attention core only for
  selective recompute (Korthikanti et al. 2022 §5).
- N counts matmul weights only: embedding lookups and norms are not FLOPs; the output
  projection (logits, 2·h·V per token) is. MoE layers count the top-k routed experts plus the
  shared experts and the router (Megatron-LM `num_floating_point_operations`).
"""

from __future__ import annotations

from suan.plan.models import ModelSpec

FORWARD_BACKWARD_FACTOR = 3
"""Training FLOPs / forward FLOPs: dgrad and wgrad each cost one forward (SC'21 §5.1)."""

CONVENTIONS = ("full", "causal")


def layer_gemm_flops(model: ModelSpec, moe: bool) -> float:
    """Forward matmul FLOPs per token of one layer, attention core excluded."""
    if moe:
        experts = (model.topk + model.shared_experts) * model.expert_params()
        mlp = experts + model.hidden * model.num_experts
    else:
        mlp = model.dense_mlp_params()
    return 2.0 * (model.attention_params() + mlp)


def attention_core_flops(model: ModelSpec, seq: int, convention: str = "full") -> float:
    """Forward FLOPs per token of one layer's QKᵀ and AV: 2·heads·(d_qk + d_v)·s_eff."""
    span = seq / 2 if convention == "causal" else seq
    return 2.0 * model.heads * (model.head_dim + model.v_head_dim) * span


def logits_flops(model: ModelSpec) -> float:
    """Forward FLOPs per token of the output projection: 2·h·V."""
    return 2.0 * model.hidden * model.vocab


def forward_flops_per_token(model: ModelSpec, seq: int, convention: str = "full") -> float:
    """Forward FLOPs per token of the whole model."""
    layers = (model.dense_layers * layer_gemm_flops(model, False)
              + model.moe_layers * layer_gemm_flops(model, True))
    core = model.num_layers * attention_core_flops(model, seq, convention)
    return layers + core + logits_flops(model)


def model_flops_per_token(model: ModelSpec, seq: int, convention: str = "full") -> float:
    """Training model FLOPs per token (no recomputation): 3 × the forward."""
    return FORWARD_BACKWARD_FACTOR * forward_flops_per_token(model, seq, convention)


def recompute_flops_per_token(model: ModelSpec, seq: int, recompute: str,
                              convention: str = "full") -> float:
    """Extra forward FLOPs per token that recomputation adds."""
    if recompute == "full":
        return forward_flops_per_token(model, seq, convention) - logits_flops(model)
    if recompute == "selective":
        return model.num_layers * attention_core_flops(model, seq, convention)
    return 0.0


def hardware_flops_per_token(model: ModelSpec, seq: int, recompute: str,
                             convention: str = "full") -> float:
    """Training FLOPs per token actually executed: model FLOPs plus recomputation."""
    return (model_flops_per_token(model, seq, convention)
            + recompute_flops_per_token(model, seq, recompute, convention))

