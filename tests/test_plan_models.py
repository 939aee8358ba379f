"""Model configs: built-ins, key families, and errors that name the key."""

import pytest

from suan.errors import SpecError
from suan.plan.models import builtin_names, load_model, parse_config


def test_gpt3_parameter_count_matches_sc21_equation_2():
    model = load_model("gpt3-175b")
    layers, h, vocab, seq = 96, 12288, 51200, 2048
    eq2 = 12 * layers * h**2 * (1 + 13 / (12 * h) + (vocab + seq) / (12 * layers * h))
    assert model.total_params() == pytest.approx(eq2, rel=1e-6)


@pytest.mark.parametrize(("name", "total_b", "active_b"), [
    ("llama2-7b", 6.74, 6.74), ("llama3-8b", 8.03, 8.03), ("llama3-70b", 70.55, 70.55),
    ("llama3-405b", 405.85, 405.85), ("mixtral-8x7b", 46.7, 12.9), ("deepseek-v3", 671.0, 37.6),
])
def test_builtin_models_have_their_published_sizes(name, total_b, active_b):
    model = load_model(name)
    assert model.total_params() / 1e9 == pytest.approx(total_b, rel=0.01)
    assert model.active_params() / 1e9 == pytest.approx(active_b, rel=0.01)


def test_every_builtin_loads_and_names_are_case_insensitive():
    assert len(builtin_names()) >= 9
    assert load_model("Llama3-8B").hidden == 4096


def test_gpt2_style_config_defaults_to_a_4h_gelu_mlp():
    model = parse_config({"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257,
                          "n_positions": 1024})
    assert model.ffn == 3072 and not model.gated_mlp and model.tied_embeddings
    assert model.total_params() / 1e6 == pytest.approx(124.4, rel=0.01)


def test_missing_key_is_a_spec_error_naming_it():
    with pytest.raises(SpecError) as info:
        parse_config({"hidden_size": 4096, "num_attention_heads": 32, "vocab_size": 10})
    assert "num_hidden_layers" in str(info.value)


def test_unknown_model_lists_the_builtins():
    with pytest.raises(SpecError) as info:
        load_model("gpt-9")
    assert "llama3-70b" in str(info.value)
