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


def test_ring_latency_follows_nccl_hops():
    from suan.plan.comm import (
        NETWORK_HOP_LATENCY_S,
        NVLINK_HOP_LATENCY_S,
        RING_BASE_LATENCY_S,
        ring_latency,
    )
    hw = hardware_for("H100")
    assert ring_latency(1, hw) == 0.0
    assert ring_latency(8, hw) == pytest.approx(RING_BASE_LATENCY_S + 7 * NVLINK_HOP_LATENCY_S)
    spread = ring_latency(128, hw)
    assert hw.group_nodes(128) == 16
    assert spread == pytest.approx(RING_BASE_LATENCY_S + 112 * NVLINK_HOP_LATENCY_S
                                   + 15 * NETWORK_HOP_LATENCY_S)
    assert ring_latency(8, hw, passes=2) > ring_latency(8, hw)


def test_fp32_gradient_reduction_moves_more_data():
    model, hw = load_model("llama3-8b"), hardware_for("H100")
    layout = Layout(dp=64, micro_batch=2, zero=3, recompute="full")
    bf16 = estimate(model, hw, layout, Workload(seq=4096, global_batch=128))
    fp32 = estimate(model, hw, layout, Workload(seq=4096, global_batch=128, grad_reduce_bytes=4))
    assert fp32.time.dp_exposed > bf16.time.dp_exposed
    assert fp32.tokens_per_s < bf16.tokens_per_s


def test_causal_kernels_skip_half_the_attention_square():
    model, hw = load_model("llama3-8b"), hardware_for("A100-80GB")
    layout = Layout(dp=8, micro_batch=1, zero=1, recompute="none")

    def speed(kernel: str) -> float:
        return estimate(model, hw, layout, Workload(seq=32768, global_batch=8,
                                                    attention=kernel)).tokens_per_s
    assert speed("flash2") > speed("flash-full") > speed("unfused")
    assert speed("flash3") == pytest.approx(speed("flash2"))
    hopper = hardware_for("H100")
    fa3 = estimate(model, hopper, layout, Workload(seq=32768, global_batch=8))
    fa2 = estimate(model, hopper, layout, Workload(seq=32768, global_batch=8, attention="flash2"))
    assert fa3.tokens_per_s > fa2.tokens_per_s


def test_fp8_casts_add_memory_traffic():
    from suan.plan import timing
    model, hw = load_model("llama3-8b"), hardware_for("H100")
    layout = Layout(dp=8, micro_batch=1)
    bf16 = timing._elementwise_seconds(model, layout, Workload(4096, 8), hw, False)
    fp8 = timing._elementwise_seconds(model, layout, Workload(4096, 8, precision="fp8"), hw, False)
    assert fp8 > bf16
    assert timing.fp8_cast_elements(model, layout, False) > timing.fp8_cast_elements(
        model, Layout(tp=8, dp=1), False)


def test_gemm_saturation_scales_with_the_roofline_ridge():
    from suan.plan.efficiency import gemm_efficiency, ridge_flops_per_byte
    a100 = ridge_flops_per_byte(312, 2039)
    h100 = ridge_flops_per_byte(989, 3350)
    assert h100 > a100
    assert gemm_efficiency(2048, 8192, 0.8, h100) < gemm_efficiency(2048, 8192, 0.8, a100)
    assert gemm_efficiency(65536, 8192, 0.8, h100) == pytest.approx(0.8, rel=0.03)


def test_overlapped_collectives_cost_their_interference():
    from suan.plan.efficiency import OVERLAP_INTERFERENCE
    from suan.plan.timing import overlapped_seconds
    assert overlapped_seconds(1.0, 5.0) == pytest.approx(OVERLAP_INTERFERENCE)
    assert overlapped_seconds(5.0, 1.0) == pytest.approx(OVERLAP_INTERFERENCE + 4.0)
