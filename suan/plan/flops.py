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
- **Sliding-window attention** (window w on `sliding_layers` of the L layers): a query at
  position i sees min(i, w) keys, so the causal span averaged over s positions is s/2 for
  s ≤ w and w − w²/(2s) for s > w (the exact mean w − w(w−1)/(2s), continuous with s/2 at
  s = w); the full-square convention counts twice the causal span (s, then 2w − w²/s). The
  per-layer core is the layer-weighted mean of windowed and full layers. Only kernels that
  skip masked blocks execute the smaller span (timing.py); model FLOPs always use it.
- N counts matmul weights only: embedding lookups and norms are not FLOPs; the output
  projection (logits, 2·h·V per token) is. MoE layers count the top-k routed experts plus the
  shared experts and the router (Megatron-LM `num_floating_point_operations`).
"""

from __future__ import annotations

from suan.plan import op_sac
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


def causal_span(seq: int, window: int = 0) -> float:
    """Keys a query attends to, averaged over a causal sequence of `seq` tokens: s/2, or with
    a sliding window w < s, w − w²/(2s)."""
    if window <= 0 or seq <= window:
        return seq / 2
    return window - window * window / (2 * seq)


def attention_core_flops(model: ModelSpec, seq: int, convention: str = "full",
                         windowed: bool = True) -> float:
    """Forward FLOPs per token of one layer's QKᵀ and AV: 2·heads·(d_qk + d_v)·s_eff, with
    s_eff twice the causal span ("full") or the causal span ("causal"), averaged over the
    layers with and without the sliding window (`windowed=False` ignores the window)."""
    factor = 1.0 if convention == "causal" else 2.0
    span = factor * causal_span(seq)
    if windowed and model.sliding_window and model.sliding_layers:
        share = min(model.sliding_layers, model.num_layers) / model.num_layers
        span += share * factor * (causal_span(seq, model.sliding_window) - causal_span(seq))
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
    if recompute == "op":
        return (model.dense_layers * layer_gemm_flops(model, False)
                * op_sac.recomputed_share(model)
                + model.moe_layers * op_sac.recomputed_attention_flops(model))
    return 0.0


def hardware_flops_per_token(model: ModelSpec, seq: int, recompute: str,
                             convention: str = "full") -> float:
    """Training FLOPs per token actually executed: model FLOPs plus recomputation."""
    return (model_flops_per_token(model, seq, convention)
            + recompute_flops_per_token(model, seq, recompute, convention))

