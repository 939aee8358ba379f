"""Config dialects: a model's `config.json` as its authors wrote it → one common set of keys.

HuggingFace-style configs name the same shape differently per family. `canonical(config)`
returns the dialect's name and a dict in Llama's key names (`num_hidden_layers`,
`hidden_size`, `intermediate_size`, `num_attention_heads`, `num_key_value_heads`, `head_dim`,
`vocab_size`, `max_position_embeddings`) plus the facts other families spell their own way:

- `_gated` (a gated GLU MLP: three matrices), `_biases` (GPT-2-style biases everywhere),
  `_qkv_bias` (biases on Q, K, V only: Qwen2), `_learned_positions`, `tie_word_embeddings`;
- `_attention` and `_attention_key`: the attention implementation the config names and the key
  that named it (`attn_implementation`, MPT's `attn_config.attn_impl`), or absent;
- `_alibi`; `_sliding_window` (tokens a query sees, 0 = all) and `_sliding_layers` (how many
  layers use the window);
- MoE and MLA keys under DeepSeek's names (`n_routed_experts`, `kv_lora_rank`, ...).

Dialects (detected by `model_type`, else by their keys; the full table of keys and defaults
is in docs/planner.md): mpt (`d_model, n_heads, n_layers, expansion_ratio`, `attn_config`),
falcon (`multi_query` / `new_decoder_architecture` + `num_kv_heads`), gemma (`head_dim`
required, GeGLU, tied, windowed layers by model type), deepseek (MLA and routed-expert keys),
qwen2 (Q/K/V biases, window only with `use_sliding_window`), mistral, mixtral, llama, gpt2
(`n_layer, n_embd, n_head, n_inner`; `multi_query` as in GPT-BigCode → one KV head).
Defaults are those of the family's HuggingFace config class.

`layer_types` (newer HuggingFace configs: "sliding_attention" / "full_attention" per layer),
when present, decides which layers use the window in every dialect. A key the dialect needs
and the config lacks raises `ConfigKeyError`, one line naming the key and the dialect.
"""

from __future__ import annotations

from typing import Any

from suan.errors import FieldProblem, SpecError

GPT2_FFN_MULTIPLIER = 4
"""GPT-2's and Falcon's MLP width when the config gives none: 4 × hidden (HF GPT2Config
`n_inner`, FalconConfig `ffn_hidden_size` docs)."""

MPT_EXPANSION_RATIO = 4
"""MPTConfig's default `expansion_ratio` (HF transformers MptConfig, llm-foundry MPTConfig)."""

GATED_ACTIVATIONS = frozenset({"silu", "swiglu", "swish", "geglu"})
"""`hidden_act` values whose MLP has a gate projection (three matrices instead of two)."""

FALCON_TYPES = frozenset({"falcon", "refinedweb", "refinedwebmodel"})
GEMMA_TYPES = frozenset({"gemma", "gemma2", "gemma3_text", "gemma3"})
MLA_KEYS = ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
MOE_KEYS = ("num_experts_per_tok", "moe_intermediate_size")


class ConfigKeyError(SpecError):
    """A key a config dialect needs is missing or malformed; its message is one line:
    `<file>: <dialect> config: <key> <what is wrong> (<what is allowed>)`."""

    def __init__(self, source: str, dialect: str, key: str, message: str, allowed: str = ""):
        super().__init__(source, [FieldProblem(key, message, allowed)])
        self.dialect = dialect
        line = f"{self.source}: {dialect} config: {self.problems[0]}"
        self.args = (line,)

    def __str__(self) -> str:
        return str(self.args[0])


def dialect_of(config: dict[str, Any]) -> str:
    """The dialect name of a parsed config.json (see the module table)."""
    model_type = str(config.get("model_type", "")).lower()
    if model_type == "mpt" or "d_model" in config:
        return "mpt"
    if model_type in FALCON_TYPES:
        return "falcon"
    if model_type in GEMMA_TYPES:
        return "gemma"
    if model_type.startswith("deepseek") or "kv_lora_rank" in config or (
            "n_routed_experts" in config):
        return "deepseek"
    if model_type in ("qwen2", "mistral", "mixtral", "llama"):
        return model_type
    if "n_layer" in config or "n_embd" in config:
        return "gpt2"
    return "llama"


def _require(config: dict[str, Any], keys: tuple[str, ...], source: str, dialect: str) -> Any:
    """The value of the first of `keys` present (not null); ConfigKeyError naming keys[0]."""
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    allowed = "an integer" + (f"; also read as {', '.join(keys[1:])}" if keys[1:] else "")
    raise ConfigKeyError(source, dialect, keys[0], "missing", allowed)


def _number(config: dict[str, Any], key: str, where: tuple[str, str], default: float,
            whole: bool = True) -> Any:
    """`config[key]` as a non-negative number (an integer when `whole`), `default` when absent
    or null; ConfigKeyError naming the key otherwise. -1 (MPT's "no window") reads as 0."""
    value = config.get(key)
    if value is None:
        return default
    if value == -1 and not isinstance(value, bool):
        return 0
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        kind = "a non-negative integer" if whole else "a non-negative number"
        raise ConfigKeyError(where[0], where[1], key, f"must be {kind}, got {value!r}")
    return value


def _section(config: dict[str, Any], key: str, where: tuple[str, str]) -> dict[str, Any]:
    """A nested object such as MPT's `attn_config` ({} when absent)."""
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigKeyError(where[0], where[1], key, f"must be an object, got {value!r}")
    return value


def _copy(config: dict[str, Any], out: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if config.get(key) is not None:
            out[key] = config[key]


def _window_layers(config: dict[str, Any], layers: int, default: int) -> int:
    """Layers that use the sliding window: counted from `layer_types` when given."""
    types = config.get("layer_types")
    if isinstance(types, list) and types:
        return sum(1 for kind in types if str(kind).startswith("sliding"))
    return default


def _attention_impl(config: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("attn_implementation", "_attn_implementation"):
        if config.get(key):
            out["_attention"], out["_attention_key"] = str(config[key]), key
            return


def _mpt(config: dict[str, Any], source: str) -> dict[str, Any]:
    dialect = "mpt"
    where = (source, dialect)
    _require(config, ("d_model",), source, dialect)
    _require(config, ("n_heads",), source, dialect)
    _require(config, ("n_layers",), source, dialect)
    hidden = _number(config, "d_model", where, 0)
    heads = _number(config, "n_heads", where, 0)
    layers = _number(config, "n_layers", where, 0)
    attn = _section(config, "attn_config", (source, "mpt attn_config"))
    ffn_config = _section(config, "ffn_config", (source, "mpt ffn_config"))
    ratio = _number(config, "expansion_ratio", where, MPT_EXPANSION_RATIO, whole=False)
    grouped = _number(attn, "kv_n_heads", (source, "mpt attn_config"), heads)
    kv_heads = {"multiquery_attention": 1, "grouped_query_attention": grouped}.get(
        str(attn.get("attn_type", "multihead_attention")), heads)
    alibi, rope = bool(attn.get("alibi", False)), bool(attn.get("rope", False))
    window = _number(attn, "sliding_window_size", (source, "mpt attn_config"), 0)
    out: dict[str, Any] = {
        "num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": ffn_config.get("ffn_hidden_size") or int(ratio * hidden),
        "vocab_size": _require(config, ("vocab_size",), source, dialect),
        "max_position_embeddings": config.get("max_seq_len", 2048),
        "_gated": ffn_config.get("ffn_type") == "mptglu",
        "_biases": not config.get("no_bias", False),
        "tie_word_embeddings": config.get("tie_word_embeddings", True),
        "_learned_positions": bool(config.get("learned_pos_emb", True)) and not (alibi or rope),
        "_alibi": alibi,
        "_sliding_window": window, "_sliding_layers": layers if window else 0,
    }
    if attn.get("attn_impl"):
        out["_attention"], out["_attention_key"] = str(attn["attn_impl"]), "attn_config.attn_impl"
    return out


def _falcon(config: dict[str, Any], source: str) -> dict[str, Any]:
    dialect = "falcon"
    hidden = _require(config, ("hidden_size",), source, dialect)
    heads = _require(config, ("num_attention_heads", "n_head"), source, dialect)
    if config.get("new_decoder_architecture"):
        kv_heads = _require(config, ("num_kv_heads", "n_head_kv"), source, dialect)
    else:
        kv_heads = 1 if config.get("multi_query", True) else heads
    return {
        "num_hidden_layers": _require(config, ("num_hidden_layers", "n_layer"), source, dialect),
        "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "intermediate_size": config.get("ffn_hidden_size") or GPT2_FFN_MULTIPLIER * hidden,
        "vocab_size": _require(config, ("vocab_size",), source, dialect),
        "max_position_embeddings": config.get("max_position_embeddings", 2048),
        "_gated": False, "_biases": bool(config.get("bias", False)),
        "tie_word_embeddings": config.get("tie_word_embeddings", True),
        "_alibi": bool(config.get("alibi", False)),
    }


def _gemma_window_layers(config: dict[str, Any], layers: int, where: tuple[str, str]) -> int:
    """Gemma 2 alternates local and global layers (even layers slide, HF Gemma2 `is_sliding`);
    Gemma 3 makes every `sliding_window_pattern`-th layer global (HF Gemma3 default 6)."""
    model_type = str(config.get("model_type", "")).lower()
    if model_type == "gemma2":
        return (layers + 1) // 2
    if model_type.startswith("gemma3"):
        pattern = _number(config, "sliding_window_pattern", where, 6) or 6
        return int(layers - layers // pattern)
    return layers


def _llama_like(config: dict[str, Any], source: str, dialect: str) -> dict[str, Any]:
    out = dict(config)
    where = (source, dialect)
    _require(config, ("num_hidden_layers",), source, dialect)
    layers = _number(config, "num_hidden_layers", where, 0)
    _require(config, ("hidden_size",), source, dialect)
    _require(config, ("num_attention_heads",), source, dialect)
    _require(config, ("vocab_size",), source, dialect)
    act = str(config.get("hidden_act") or config.get("hidden_activation") or "silu").lower()
    out["_gated"] = dialect == "gemma" or act in GATED_ACTIVATIONS
    out["tie_word_embeddings"] = config.get("tie_word_embeddings", dialect == "gemma")
    window = _number(config, "sliding_window", where, 0)
    sliding_layers = layers
    if dialect == "gemma":
        _require(config, ("head_dim",), source, dialect)
        sliding_layers = _gemma_window_layers(config, layers, where)
    if dialect == "qwen2":
        out["_qkv_bias"] = True
        window = window if config.get("use_sliding_window") else 0
        sliding_layers = max(0, layers - _number(config, "max_window_layers", where, 0))
    out["_sliding_window"] = window
    out["_sliding_layers"] = _window_layers(config, layers, sliding_layers) if window else 0
    if dialect == "deepseek":
        _deepseek_keys(config, source)
    return out


def _deepseek_keys(config: dict[str, Any], source: str) -> None:
    """MLA needs its head widths, routed experts their top-k and width."""
    if config.get("kv_lora_rank"):
        for key in MLA_KEYS:
            _require(config, (key,), source, "deepseek MLA")
    if config.get("n_routed_experts"):
        for key in MOE_KEYS:
            _require(config, (key,), source, "deepseek MoE")


def _gpt2(config: dict[str, Any], source: str) -> dict[str, Any]:
    dialect = "gpt2"
    hidden = _require(config, ("n_embd", "hidden_size"), source, dialect)
    heads = _require(config, ("n_head", "num_attention_heads"), source, dialect)
    out = {
        "num_hidden_layers": _require(config, ("n_layer", "num_hidden_layers"), source, dialect),
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": 1 if config.get("multi_query") else heads,
        "intermediate_size": config.get("n_inner") or GPT2_FFN_MULTIPLIER * hidden,
        "vocab_size": _require(config, ("vocab_size",), source, dialect),
        "max_position_embeddings": config.get("n_positions") or config.get("n_ctx") or 1024,
        "_gated": False, "_biases": True, "_learned_positions": True,
        "tie_word_embeddings": config.get("tie_word_embeddings", True),
    }
    return out


def canonical(config: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """(dialect, the config in common key names). Raises ConfigKeyError naming a missing key."""
    dialect = dialect_of(config)
    if dialect == "mpt":
        out = _mpt(config, source)
    elif dialect == "falcon":
        out = _falcon(config, source)
    elif dialect == "gpt2":
        out = _gpt2(config, source)
    else:
        out = _llama_like(config, source, dialect)
    _copy(config, out, ("_name",))
    if "_attention" not in out:
        _attention_impl(config, out)
    return dialect, out
