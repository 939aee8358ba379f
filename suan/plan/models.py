"""Transformer model shapes for the planner, read from HuggingFace-style `config.json` files.

`load_model(name_or_path)` accepts a built-in name (a file in `suan/plan/models/`, e.g.
`llama3-70b`), a path to a `config.json`, or a dict already parsed. The config's dialect
(Llama, Mistral, Qwen2, Mixtral, Gemma, Falcon, MPT, GPT-2, DeepSeek with MLA and MoE) is
translated to common keys by `suan.plan.dialects`; a missing key raises a one-line
`ConfigKeyError` naming the key and the dialect.

Besides the shape, a ModelSpec carries what the config says about attention: the
implementation it names (`attention_impl`, with the key it came from), ALiBi, and the sliding
window with the number of layers that use it. `suan.plan.attention` turns these into the
planner's kernel.

Parameter counts are exact for these architectures up to norms and biases, which are counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from suan.errors import FieldProblem, SpecError
from suan.plan.dialects import ConfigKeyError, canonical

BUILTIN_DIR = Path(__file__).with_name("models")


@dataclass(frozen=True)
class ModelSpec:
    """One decoder-only transformer. Sizes are counts (layers, units, heads, tokens)."""

    name: str
    num_layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    max_seq: int
    head_dim: int
    v_head_dim: int
    gated_mlp: bool = True
    biases: bool = False
    tied_embeddings: bool = False
    learned_positions: bool = False
    num_experts: int = 0
    topk: int = 0
    expert_ffn: int = 0
    shared_experts: int = 0
    first_dense_layers: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    rope_head_dim: int = 0
    qkv_bias: bool = False
    dialect: str = "llama"
    attention_impl: str = ""
    """The attention implementation the config names, as written (e.g. "sdpa", "triton")."""
    attention_key: str = ""
    """The config key that named it (e.g. `attn_config.attn_impl`)."""
    alibi: bool = False
    sliding_window: int = 0
    """Keys each query attends to in a sliding-window layer (0: the whole causal prefix)."""
    sliding_layers: int = 0
    """How many of the layers use the sliding window."""

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def moe_layers(self) -> int:
        return self.num_layers - self.first_dense_layers if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        return self.num_layers - self.moe_layers

    @property
    def mlp_matrices(self) -> int:
        """Weight matrices per MLP: 3 for a gated (SwiGLU) MLP, 2 otherwise."""
        return 3 if self.gated_mlp else 2

    def attention_params(self) -> int:
        """Projection weights of one attention block (the matrices that do matmuls)."""
        h, n = self.hidden, self.heads
        if self.kv_lora_rank:
            q_dim = n * self.head_dim
            q = h * self.q_lora_rank + self.q_lora_rank * q_dim if self.q_lora_rank else h * q_dim
            kv_down = h * (self.kv_lora_rank + self.rope_head_dim)
            nope = self.head_dim - self.rope_head_dim
            kv_up = self.kv_lora_rank * n * (nope + self.v_head_dim)
            return q + kv_down + kv_up + n * self.v_head_dim * h
        qkv = h * (n + 2 * self.kv_heads) * self.head_dim
        return qkv + n * self.head_dim * h

    def dense_mlp_params(self) -> int:
        """Weights of one dense MLP block."""
        return self.mlp_matrices * self.hidden * self.ffn

    def expert_params(self) -> int:
        """Weights of one routed expert."""
        return self.mlp_matrices * self.hidden * self.expert_ffn

    def shared_expert_params(self) -> int:
        """Weights of the always-active shared experts of one MoE layer."""
        return self.shared_experts * self.expert_params()

    def norm_params(self) -> int:
        """Norm and bias weights of one layer (no matmuls).

        LayerNorm has weight and bias, RMSNorm a weight; GPT-2-style layers add the biases of
        QKV, output, fc1 and fc2 (13h in total for a 4h MLP, SC'21 Eq. 2); Qwen2 adds the Q, K,
        V biases alone; MLA adds the norms of its two low-rank latents.
        """
        h = self.hidden
        qkv_bias = (self.heads + 2 * self.kv_heads) * self.head_dim
        if not self.biases:
            extra = qkv_bias if self.qkv_bias else 0
            return 2 * h + self.q_lora_rank + self.kv_lora_rank + extra
        return 4 * h + qkv_bias + h + self.ffn + h

    def embedding_params(self) -> int:
        """Input embedding (and learned positions) plus the untied output projection."""
        table = self.vocab * self.hidden
        positions = self.max_seq * self.hidden if self.learned_positions else 0
        return table + positions + (0 if self.tied_embeddings else table)

    def layer_params(self, moe: bool) -> int:
        """All weights of one layer; `moe` picks the MoE variant (routed experts included)."""
        if moe:
            mlp = (self.num_experts * self.expert_params() + self.shared_expert_params()
                   + self.hidden * self.num_experts)
        else:
            mlp = self.dense_mlp_params()
        return self.attention_params() + mlp + self.norm_params()

    def total_params(self) -> int:
        """Every parameter, embeddings included."""
        layers = (self.dense_layers * self.layer_params(False)
                  + self.moe_layers * self.layer_params(True))
        return layers + self.embedding_params() + self.hidden

    def routed_expert_params_total(self) -> int:
        """Weights that live in routed experts (sharded by expert parallelism)."""
        return self.moe_layers * self.num_experts * self.expert_params()

    def active_params(self) -> int:
        """Parameters that touch each token (top-k of the routed experts)."""
        inactive = self.moe_layers * (self.num_experts - self.topk) * self.expert_params()
        return self.total_params() - inactive


def _problem(source: str, key: str, message: str, allowed: str = "") -> SpecError:
    return SpecError(source, [FieldProblem(key, message, allowed)])


def _int_key(config: dict[str, Any], keys: tuple[str, ...], where: tuple[str, str],
             default: int | None = None) -> int:
    """The first of `keys` present as a non-negative integer, else `default`; `where` is
    (source, dialect) for the error naming the key."""
    source, dialect = where
    for key in keys:
        value = config.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigKeyError(source, dialect, key,
                                     f"must be a non-negative integer, got {value!r}")
            return value
    if default is None:
        raise ConfigKeyError(source, dialect, keys[0], "missing", " or ".join(keys))
    return default


def _head_dims(config: dict[str, Any], hidden: int, heads: int,
               where: tuple[str, str]) -> tuple[int, int]:
    """(query/key width, value width) per head: `head_dim` when given (Gemma), else
    hidden/heads; MLA's keys are `qk_nope_head_dim + qk_rope_head_dim` wide."""
    head_dim = _int_key(config, ("head_dim",), where, 0)
    if not head_dim:
        if heads == 0 or hidden % heads:
            raise ConfigKeyError(where[0], where[1], "num_attention_heads",
                                 f"{heads} does not divide hidden size {hidden}",
                                 "a divisor of the hidden size, or a head_dim key")
        head_dim = hidden // heads
    if not config.get("kv_lora_rank"):
        return head_dim, head_dim
    qk = (_int_key(config, ("qk_nope_head_dim",), where)
          + _int_key(config, ("qk_rope_head_dim",), where))
    return qk, _int_key(config, ("v_head_dim",), where)


def parse_config(config: dict[str, Any], name: str = "model") -> ModelSpec:
    """Build a ModelSpec from a config.json dict of any known dialect. Raises
    ConfigKeyError (a SpecError) naming the missing key and the dialect."""
    if not isinstance(config, dict):
        raise _problem(name, "", "a model config must be a JSON object")
    dialect, keys = canonical(config, name)
    where = (name, dialect)
    hidden = _int_key(keys, ("hidden_size",), where)
    heads = _int_key(keys, ("num_attention_heads",), where)
    ffn = _int_key(keys, ("intermediate_size", "n_inner", "ffn_hidden_size"), where)
    head_dim, v_head_dim = _head_dims(keys, hidden, heads, where)
    experts = _int_key(keys, ("num_local_experts", "n_routed_experts", "num_experts"), where, 0)
    spec = ModelSpec(
        name=str(keys.get("_name", name)),
        num_layers=_int_key(keys, ("num_hidden_layers",), where),
        hidden=hidden, ffn=ffn, heads=heads,
        kv_heads=_int_key(keys, ("num_key_value_heads",), where, heads),
        vocab=_int_key(keys, ("vocab_size",), where),
        max_seq=_int_key(keys, ("max_position_embeddings",), where, 2048),
        head_dim=head_dim, v_head_dim=v_head_dim,
        gated_mlp=bool(keys.get("_gated")), biases=bool(keys.get("_biases")),
        tied_embeddings=bool(keys.get("tie_word_embeddings")),
        learned_positions=bool(keys.get("_learned_positions")),
        num_experts=experts,
        topk=_int_key(keys, ("num_experts_per_tok",), where, 2 if experts else 0),
        expert_ffn=_int_key(keys, ("moe_intermediate_size",), where, ffn) if experts else 0,
        shared_experts=_int_key(keys, ("n_shared_experts",), where, 0),
        first_dense_layers=_int_key(keys, ("first_k_dense_replace",), where, 0),
        q_lora_rank=_int_key(keys, ("q_lora_rank",), where, 0),
        kv_lora_rank=_int_key(keys, ("kv_lora_rank",), where, 0),
        rope_head_dim=_int_key(keys, ("qk_rope_head_dim",), where, 0),
        qkv_bias=bool(keys.get("_qkv_bias")), dialect=dialect,
        attention_impl=str(keys.get("_attention", "")),
        attention_key=str(keys.get("_attention_key", "")),
        alibi=bool(keys.get("_alibi")),
        sliding_window=_int_key(keys, ("_sliding_window",), where, 0),
        sliding_layers=_int_key(keys, ("_sliding_layers",), where, 0),
    )
    _check_kv_heads(spec, name)
    return spec


def _check_kv_heads(spec: ModelSpec, source: str) -> None:
    if spec.kv_heads == 0 or spec.heads % spec.kv_heads:
        raise _problem(source, "num_key_value_heads", f"{spec.kv_heads} does not divide "
                       f"num_attention_heads={spec.heads}", "a divisor of the attention heads")
    if spec.topk > max(spec.num_experts, 0) and spec.is_moe:
        raise _problem(source, "num_experts_per_tok", f"{spec.topk} exceeds the "
                       f"{spec.num_experts} experts", f"1 to {spec.num_experts}")


def builtin_names() -> list[str]:
    """Names of the shipped model configs."""
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.json"))


@cache
def _builtin(name: str) -> ModelSpec:
    path = BUILTIN_DIR / f"{name}.json"
    return parse_config(json.loads(path.read_text()), name)


def load_model(model: str | Path | dict[str, Any] | ModelSpec) -> ModelSpec:
    """A ModelSpec from a built-in name, a config.json path, a parsed dict or a ModelSpec."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, dict):
        return parse_config(model, str(model.get("_name", "model")))
    key = str(model).strip().lower()
    if key in builtin_names():
        return _builtin(key)
    path = Path(model)
    if path.is_file():
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise _problem(str(path), "", f"invalid JSON: {exc}") from None
        return parse_config(document, path.stem if path.name != "config.json" else str(path))
    raise _problem("--model", "model", f"{model!r} is neither a built-in model nor a file",
                   "a config.json path or one of " + ", ".join(builtin_names()))
