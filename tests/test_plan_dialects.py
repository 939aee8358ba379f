"""Config dialects: real configs of each family give their published parameter counts, and a
missing key is a one-line error naming the key and the dialect (exit code 2 from the CLI)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from suan.plan.dialects import ConfigKeyError
from suan.plan.models import load_model, parse_config

CONFIGS = Path(__file__).parent / "fixtures" / "plan-configs"


def published_tolerance(published: float, last_digit: float) -> float:
    """Absolute tolerance for a published count rounded to `last_digit`: half a unit of that
    digit (rounding), or 1 % (norms and biases the count may or may not include), the larger."""
    return max(last_digit / 2, 0.01 * published)


def config(name: str) -> Path:
    return CONFIGS / name / "config.json"


@pytest.mark.parametrize(("name", "dialect", "published_b", "last_digit_b"), [
    ("mpt-7b", "mpt", 6.7, 0.1),               # model card
    ("falcon-7b", "falcon", 7.0, 1.0),         # model card
    ("mistral-7b-v0.1", "mistral", 7.24, 0.01),  # Hub safetensors count
    ("qwen2.5-0.5b", "qwen2", 0.49, 0.01),     # model card
    ("deepseek-v2-lite", "deepseek", 15.7, 0.1),  # model card
])
def test_real_configs_give_their_published_total_parameters(name, dialect, published_b,
                                                             last_digit_b):
    model = load_model(config(name))
    assert model.dialect == dialect
    total_b = model.total_params() / 1e9
    assert total_b == pytest.approx(published_b,
                                    abs=published_tolerance(published_b, last_digit_b))


def test_gemma_non_embedding_count_is_the_papers_exactly():
    """Gemma paper Table 2: 7,751,248,896 non-embedding parameters; head_dim 256 × 16 heads is
    wider than the 3072 hidden size and the MLP is a gated GeLU."""
    model = load_model(config("gemma-7b"))
    assert (model.head_dim, model.heads, model.hidden) == (256, 16, 3072)
    assert model.gated_mlp and model.tied_embeddings
    assert model.total_params() - model.embedding_params() == 7_751_248_896


def test_qwen_non_embedding_count_matches_the_card():
    model = load_model(config("qwen2.5-0.5b"))
    non_embedding_b = (model.total_params() - model.embedding_params()) / 1e9
    assert non_embedding_b == pytest.approx(0.36, abs=published_tolerance(0.36, 0.01))
    assert model.sliding_window == 0, "use_sliding_window is false"


def test_deepseek_mla_and_moe_keys_flow_into_the_shape():
    """MLA: keys are qk_nope + qk_rope = 192 wide, values 128; q_lora_rank null is no query
    low-rank. MoE: 26 of 27 layers routed. Activated parameters without the input embedding
    (DeepSeek's convention; V3's 37B likewise) are 2.45B here: the card's "2.4B" read as a
    truncated figure (2.4 ≤ x < 2.5); rounded to the nearest it would need ≤ 2.45."""
    model = load_model(config("deepseek-v2-lite"))
    assert (model.head_dim, model.v_head_dim, model.q_lora_rank, model.kv_lora_rank) == (
        192, 128, 0, 512)
    assert (model.moe_layers, model.dense_layers, model.topk, model.shared_experts) == (
        26, 1, 6, 2)
    activated_b = (model.active_params() - model.vocab * model.hidden) / 1e9
    assert 2.4 <= activated_b < 2.5


def test_mpt_reads_its_own_keys_alibi_and_attention_implementation():
    model = load_model(config("mpt-7b"))
    assert (model.num_layers, model.hidden, model.heads, model.ffn) == (32, 4096, 32, 16384)
    assert model.alibi and not model.learned_positions, "ALiBi replaces learned positions"
    assert not model.biases and model.tied_embeddings
    assert (model.attention_impl, model.attention_key) == ("torch", "attn_config.attn_impl")


def test_falcon_multi_query_has_one_kv_head_and_a_4h_gelu_mlp():
    model = load_model(config("falcon-7b"))
    assert (model.heads, model.kv_heads, model.ffn, model.gated_mlp) == (71, 1, 4 * 4544, False)


def test_mistral_window_applies_to_every_layer():
    model = load_model(config("mistral-7b-v0.1"))
    assert (model.sliding_window, model.sliding_layers) == (4096, 32)


@pytest.mark.parametrize(("name", "key", "dialect"), [
    ("mpt-7b", "d_model", "mpt"),
    ("mpt-7b", "n_layers", "mpt"),
    ("gemma-7b", "head_dim", "gemma"),
    ("falcon-7b", "n_head", "falcon"),  # the shipped file has the RefinedWeb layout
    ("deepseek-v2-lite", "qk_rope_head_dim", "deepseek MLA"),
    ("deepseek-v2-lite", "moe_intermediate_size", "deepseek MoE"),
    ("mistral-7b-v0.1", "intermediate_size", "mistral"),
])
def test_missing_key_is_one_line_naming_key_and_dialect(name, key, dialect):
    document = json.loads(config(name).read_text())
    del document[key]
    with pytest.raises(ConfigKeyError) as info:
        parse_config(document, f"{name}/config.json")
    message = str(info.value)
    assert "\n" not in message
    assert f"{dialect} config" in message and key in message and "missing" in message


def test_cli_exits_2_with_the_one_line_error(tmp_path):
    document = json.loads(config("mpt-7b").read_text())
    del document["n_heads"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    result = subprocess.run(
        [sys.executable, "-m", "suan.cli.main", "plan", "estimate", "--model", str(path),
         "--accelerator", "H100", "--devices", "8", "--global-batch", "8", "--seq", "2048"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode == 2
    assert "mpt config: n_heads: missing" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("document", "kv_heads"), [
    ({"d_model": 1024, "n_heads": 16, "n_layers": 4, "vocab_size": 100,
      "attn_config": {"attn_type": "grouped_query_attention", "kv_n_heads": 4}}, 4),
    ({"d_model": 1024, "n_heads": 16, "n_layers": 4, "vocab_size": 100,
      "attn_config": {"attn_type": "multiquery_attention"}}, 1),
    ({"model_type": "gpt_bigcode", "n_embd": 1024, "n_head": 16, "n_layer": 4,
      "vocab_size": 100, "multi_query": True}, 1),
    ({"model_type": "falcon", "hidden_size": 1024, "num_attention_heads": 16,
      "num_hidden_layers": 4, "vocab_size": 100, "new_decoder_architecture": True,
      "num_kv_heads": 8}, 8),
])
def test_gqa_and_mqa_spellings_give_the_kv_heads(document, kv_heads):
    assert parse_config(document).kv_heads == kv_heads


@pytest.mark.parametrize(("name", "key", "value"), [
    ("mistral-7b-v0.1", "sliding_window", "4k"),
    ("mistral-7b-v0.1", "num_hidden_layers", "32"),
    ("mpt-7b", "attn_config", "torch"),
    ("mpt-7b", "expansion_ratio", "four"),
    ("qwen2.5-0.5b", "max_window_layers", -3),
])
def test_malformed_values_are_one_line_errors_naming_the_key(name, key, value):
    document = json.loads(config(name).read_text())
    document[key] = value
    with pytest.raises(ConfigKeyError) as info:
        parse_config(document, f"{name}/config.json")
    assert key in str(info.value) and "\n" not in str(info.value)
