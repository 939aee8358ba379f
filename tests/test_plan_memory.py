"""Memory: ZeRO stage formulas and Korthikanti et al. 2022 activation formulas."""

import pytest

from suan.plan.layout import Layout, Workload
from suan.plan.memory import (
    ZERO_PAPER_STATES,
    activation_bytes,
    device_params,
    in_flight_factor,
    model_states,
)
from suan.plan.models import ModelSpec

GPT_22B = ModelSpec(name="gpt-22b", num_layers=48, hidden=6144, ffn=24576, heads=64,
                    kv_heads=64, vocab=51200, max_seq=2048, head_dim=96, v_head_dim=96,
                    gated_mlp=False, biases=True, tied_embeddings=True, learned_positions=True)
KORTHIKANTI = Workload(seq=2048, global_batch=8, attention="unfused")
"""Two micro-batches of 4 on pp = 2: the first stage holds 2 × 24 = 48 layers' worth (1F1B)."""


@pytest.mark.parametrize(("zero", "bytes_per_param"), [
    (0, lambda n: 16), (1, lambda n: 4 + 12 / n), (2, lambda n: 2 + 14 / n), (3, lambda n: 16 / n),
])
def test_zero_stages_match_the_zero_paper(zero, bytes_per_param):
    layout = Layout(dp=64, zero=zero)
    psi = sum(device_params(GPT_22B, layout))
    assert sum(model_states(GPT_22B, layout, ZERO_PAPER_STATES)) == pytest.approx(
        psi * bytes_per_param(64) + (2 * psi / 48 * 2 if zero == 3 else 0))


def _per_layer(layout):
    sbh = 2048 * 4 * 6144
    return activation_bytes(GPT_22B, layout, KORTHIKANTI) / 48, sbh


def test_tp_without_recompute_is_10_plus_24_over_t_plus_scores():
    per_layer, sbh = _per_layer(Layout(tp=8, pp=2, micro_batch=4, zero=0, recompute="none"))
    assert per_layer == pytest.approx(sbh * (10 + 24 / 8 + 5 * 64 * 2048 / (6144 * 8)))


def test_tp_sp_selective_is_34_over_t():
    layout = Layout(tp=8, pp=2, micro_batch=4, zero=0, recompute="selective",
                    sequence_parallel=True)
    per_layer, sbh = _per_layer(layout)
    assert per_layer == pytest.approx(34 * sbh / 8)


def test_full_recompute_keeps_the_layer_inputs_plus_one_working_layer():
    layout = Layout(tp=8, pp=2, micro_batch=4, zero=0, recompute="full", sequence_parallel=True)
    total = activation_bytes(GPT_22B, layout, Workload(seq=2048, global_batch=8))
    sbh = 2048 * 4 * 6144
    working = sbh * 34 / 8
    assert total == pytest.approx(48 * 2 * sbh / 8 + working)


def test_interleaving_multiplies_in_flight_activations():
    workload = Workload(seq=2048, global_batch=64)
    assert in_flight_factor(Layout(pp=8, vpp=3), workload) == pytest.approx(8 * (1 + 7 / 24))
    assert in_flight_factor(Layout(pp=8), Workload(seq=2048, global_batch=4)) == 4
