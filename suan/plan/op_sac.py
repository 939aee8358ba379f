"""Per-op selective activation checkpointing (`--recompute op`): what it keeps and recomputes.

PyTorch's selective activation checkpointing with an op policy, as torchtitan configures it
for its Llama models (`activation_checkpoint.mode = 'selective'`, `selective_ac_option = 'op'`
in `train_configs/llama3_8b.toml`; the policy in `torchtitan/distributed/activation_checkpoint.py`):
inside each transformer block, the outputs of the matmuls are saved except every second one
(counted in forward order), and so are the attention kernel's outputs; everything else
(norms, activations, the unsaved matmuls) is recomputed in backward from the block's input.

A dense block's matmuls in forward order are Q, K, V, the attention output projection, then
the MLP's gate, up and down projections (SwiGLU) or its two linears (GeLU). The odd ones
(1st, 3rd, ...) are saved, the even ones recomputed: for a SwiGLU block K, the output
projection and the up projection. Every block also recomputes its element-wise forward (norms,
activations).

MoE blocks are approximated: their memory is what the Megatron-style selective mode keeps (no
s² scores), and their recomputed matmuls are the attention's unsaved ones only (routed experts
run grouped matmuls whose saving the per-op policy does not decide). MLA's low-rank
projections are not listed; its blocks are costed with the plain attention shape.
"""

from __future__ import annotations

from suan.plan.layout import Layout
from suan.plan.models import ModelSpec

ACTIVATION_BYTES = 2
"""Bytes per saved element (bf16)."""


def _matmuls(model: ModelSpec) -> list[tuple[int, int, bool]]:
    """(input width, output width, column-parallel) of a dense block's matmuls in forward
    order; column-parallel outputs are split by tensor parallelism, row-parallel ones are not."""
    h, d, v = model.hidden, model.head_dim, model.v_head_dim
    attention = [(h, model.heads * d, True), (h, model.kv_heads * d, True),
                 (h, model.kv_heads * v, True), (model.heads * v, h, False)]
    if model.gated_mlp:
        mlp = [(h, model.ffn, True), (h, model.ffn, True), (model.ffn, h, False)]
    else:
        mlp = [(h, model.ffn, True), (model.ffn, h, False)]
    return attention + mlp


def recomputed_share(model: ModelSpec) -> float:
    """Fraction of a dense block's forward matmul FLOPs that the policy recomputes (every
    second matmul)."""
    flops = [inner * outer for inner, outer, _ in _matmuls(model)]
    return sum(flops[1::2]) / sum(flops)


def recomputed_attention_flops(model: ModelSpec) -> float:
    """Forward FLOPs per token of an MoE block's recomputed matmuls (module docstring): the
    attention's unsaved ones, K and the output projection."""
    attention = [inner * outer for inner, outer, _ in _matmuls(model)[:4]]
    return 2.0 * sum(attention[1::2])


def stored_per_token(model: ModelSpec, layout: Layout) -> float:
    """Bytes a dense block keeps per token on one device: its input, the saved matmul
    outputs and the attention output (with its fp32 log-sum-exp per head)."""
    def width(columns: int, column_parallel: bool) -> float:
        split = column_parallel or layout.sequence_parallel
        return columns / layout.tp if split else float(columns)

    saved = sum(width(outer, column) for _, outer, column in _matmuls(model)[0::2])
    block_input = width(model.hidden, False)
    attention_out = model.heads * model.v_head_dim / layout.tp
    log_sum_exp = 4 * model.heads / layout.tp / ACTIVATION_BYTES
    return ACTIVATION_BYTES * (saved + block_input + attention_out + log_sum_exp)
