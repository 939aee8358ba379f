"""FLOP counts: the 6N + 12·L·h·s convention, causal halving, recompute in HFU."""

import pytest

from suan.plan.flops import hardware_flops_per_token, model_flops_per_token
from suan.plan.models import load_model


def test_gpt3_flops_per_token_is_6n_plus_12lhs():
    model = load_model("gpt3-175b")
    layers, h, vocab, s = 96, 12288, 51200, 2048
    n_matmul = 12 * layers * h * h + vocab * h
    expected = 6 * n_matmul + 12 * layers * h * s
    assert model_flops_per_token(model, s) == pytest.approx(expected, rel=1e-9)


def test_causal_convention_halves_the_attention_term():
    model = load_model("gpt3-175b")
    full = model_flops_per_token(model, 2048, "full")
    causal = model_flops_per_token(model, 2048, "causal")
    assert full - causal == pytest.approx(6 * 96 * 12288 * 2048)


def test_full_recompute_adds_a_forward_without_the_logits():
    model = load_model("gpt3-175b")
    mfu_flops = model_flops_per_token(model, 2048)
    hfu_flops = hardware_flops_per_token(model, 2048, "full")
    logits = 2 * 12288 * 51200
    assert hfu_flops == pytest.approx(mfu_flops * 4 / 3 - logits, rel=1e-9)
    assert hardware_flops_per_token(model, 2048, "none") == mfu_flops
