"""Step time: pipeline bubble, communication tiers, and what slows a step down."""

import pytest

from suan.plan.estimate import estimate
from suan.plan.hardware import hardware_for
from suan.plan.layout import Layout, Workload
from suan.plan.models import load_model
from suan.plan.timing import bubble_fraction


def test_bubble_fraction_of_1f1b_and_interleaved():
    assert bubble_fraction(8, 64) == pytest.approx(7 / 64)
    assert bubble_fraction(8, 64, vpp=4) == pytest.approx(7 / 256)


def test_step_bubble_is_p_minus_1_stage_times():
    model, hw = load_model("gpt3-175b"), hardware_for("A100-80GB")
    plan = estimate(model, hw, Layout(tp=8, pp=8, dp=1, zero=0),
                    Workload(seq=2048, global_batch=64))
    per_micro = (plan.time.compute + plan.time.tp_comm + plan.time.pp_comm) / 64
    assert plan.time.bubble == pytest.approx(7 * per_micro)


def test_tp_across_nodes_is_slower_than_inside_a_node():
    hw = hardware_for("H100")
    assert hw.group_bandwidth_gbs(8) == pytest.approx(450 * 0.8)
    assert hw.group_bandwidth_gbs(64, stride=8) == pytest.approx(50 * 0.9)
    assert hw.group_bandwidth_gbs(8) > 5 * hw.group_bandwidth_gbs(4, stride=8)


def test_mfu_and_hfu_differ_by_recompute():
    model, hw = load_model("llama3-8b"), hardware_for("H100")
    workload = Workload(seq=4096, global_batch=64)
    full = estimate(model, hw, Layout(dp=8, micro_batch=1, recompute="full"), workload)
    none = estimate(model, hw, Layout(dp=8, micro_batch=1, recompute="none"), workload)
    assert full.hfu > full.mfu
    assert none.hfu == pytest.approx(none.mfu)
    assert none.tokens_per_s > full.tokens_per_s


def test_fp8_is_faster_than_bf16_but_not_twice():
    model, hw = load_model("llama3-70b"), hardware_for("H100")
    layout = Layout(tp=8, pp=4, dp=2, micro_batch=1, sequence_parallel=True)
    bf16 = estimate(model, hw, layout, Workload(seq=4096, global_batch=128))
    fp8 = estimate(model, hw, layout, Workload(seq=4096, global_batch=128, precision="fp8"))
    assert 1.0 < fp8.tokens_per_s / bf16.tokens_per_s < 2.0
