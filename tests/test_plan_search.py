"""Search: valid layouts only, ranked by throughput, with counted rejections; fast at scale."""

import pytest

from suan.plan.advice import choose_layout, size_cluster
from suan.plan.hardware import hardware_for
from suan.plan.layout import Workload
from suan.plan.memory import usable_bytes
from suan.plan.models import load_model
from suan.plan.search import OUT_OF_MEMORY, search


def test_search_returns_valid_fitting_layouts_fastest_first():
    model, hw = load_model("llama3-70b"), hardware_for("H100")
    result = search(model, hw, 256, Workload(seq=4096, global_batch=512), top=5)
    assert len(result.plans) == 5
    speeds = [plan.tokens_per_s for plan in result.plans]
    assert speeds == sorted(speeds, reverse=True)
    for plan in result.plans:
        layout = plan.layout
        assert layout.devices == 256
        assert model.heads % layout.tp == 0 and layout.tp <= 8
        assert model.num_layers % (layout.pp * layout.vpp) == 0
        assert plan.memory.total <= usable_bytes(hw.memory_gib)
    assert result.rejected[OUT_OF_MEMORY] > 0
    assert result.considered == result.feasible + sum(result.rejected.values())


def test_a_model_that_cannot_fit_has_no_plan_and_says_why():
    result = search(load_model("llama3-405b"), hardware_for("A100-40GB"), 8,
                    Workload(seq=4096, global_batch=8))
    assert result.plans == [] and result.rejected[OUT_OF_MEMORY] > 0
    assert choose_layout("llama3-405b", "A100-40GB", 8, 4096, 8) is None


def test_search_on_16384_devices_finds_a_plan():
    # How long it takes: bench/planner_search.py (budget 2 s).
    result = search(load_model("llama3-405b"), hardware_for("H100"), 16384,
                    Workload(seq=8192, global_batch=2048), top=3)
    assert result.best is not None and result.best.layout.devices == 16384
    assert result.considered == result.feasible + sum(result.rejected.values())


def test_choose_layout_gives_the_rank_environment():
    plan = choose_layout("llama3-8b", "H100", 16, seq=4096, global_batch=64)
    env = plan.env()
    assert int(env["SUAN_TP"]) * int(env["SUAN_PP"]) * int(env["SUAN_DP"]) * int(
        env["SUAN_CP"]) == 16


def test_type_speeds_rank_h100_above_h20():
    from suan.plan.use import type_speeds
    speeds = type_speeds("llama3-8b", ["H100", "H20"], 16, 4096, 64)
    assert speeds["H100"] > 2 * speeds["H20"] > 0


def test_size_cluster_meets_the_deadline_with_whole_nodes():
    sizing = size_cluster("llama3-8b", "H100", 1e11, 7)
    assert sizing.devices % 8 == 0 and sizing.days <= 7


def test_compare_ranks_h100_h800_h20_and_910b_for_llama3_70b():
    from suan.plan.advice import best_plans
    plans = best_plans("llama3-70b", ["H100", "H800", "H20", "Ascend-910B"], 64)
    speed = {name: plan.tokens_per_s for name, plan in plans.items()}
    assert speed["H100"] > speed["H800"] > speed["Ascend-910B"] > speed["H20"] > 0
    h100, h800 = plans["H100"], plans["H800"]
    if h100.layout == h800.layout:
        assert h800.time.compute == pytest.approx(h100.time.compute)
        assert h800.time.tp_comm > h100.time.tp_comm
    assert plans["H20"].memory_capacity_gib > h100.memory_capacity_gib
