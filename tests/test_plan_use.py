"""The planner hooks the control plane and the scheduler call: plan_env and type_speeds."""

import pytest

from suan.errors import SpecError
from suan.plan.advice import choose_layout
from suan.plan.use import ENV_KEYS, clear_speed_cache, plan_env, type_speeds


def test_plan_env_gives_every_degree_of_the_best_plan():
    env = plan_env("llama3-8b", "H100", 16, 4096, 256)
    assert set(ENV_KEYS) <= set(env)
    assert all(isinstance(value, str) for value in env.values())
    degrees = int(env["SUAN_TP"]) * int(env["SUAN_PP"]) * int(env["SUAN_DP"]) * int(
        env["SUAN_CP"])
    assert degrees == 16
    assert env["SUAN_RECOMPUTE"] in ("none", "selective", "full")
    assert env == choose_layout("llama3-8b", "H100", 16, 4096, 256).env()


def test_plan_env_raises_a_clear_error_when_nothing_fits():
    with pytest.raises(SpecError) as caught:
        plan_env("llama3-70b", "A100-40GB", 8, 4096, 64)
    problem = caught.value.problems[0]
    assert problem.path == "devices"
    assert "no layout of llama3-70b fits on 8 × A100-40GB" in problem.message
    assert "out of memory" in problem.message


def test_plan_env_rejects_unknown_names_and_empty_clusters():
    with pytest.raises(SpecError):
        plan_env("llama3-8b", "no-such-gpu", 8, 4096, 64)
    with pytest.raises(SpecError):
        plan_env("no-such-model", "H100", 8, 4096, 64)
    with pytest.raises(SpecError):
        plan_env("llama3-8b", "H100", 0, 4096, 64)


def test_type_speeds_ranks_h100_above_a100():
    speeds = type_speeds("llama3-8b", ["H100", "A100-80GB"], 16, seq=4096, global_batch=256)
    assert list(speeds) == ["H100", "A100-80GB"]
    assert speeds["H100"] > speeds["A100-80GB"] > 0


def test_type_speeds_gives_zero_where_nothing_fits():
    speeds = type_speeds("llama3-70b", ["A100-40GB", "H200"], 16, seq=4096, global_batch=64)
    assert speeds["A100-40GB"] == 0.0
    assert speeds["H200"] > 0.0


def test_type_speeds_is_memoised_per_type():
    # How fast a warm call is: bench/planner_type_speeds.py.
    from suan.plan.use import _type_speed

    clear_speed_cache()
    args = ("llama3-8b", ("H100", "H20"), 8)
    cold = type_speeds(*args, seq=2048, global_batch=128)
    searched = _type_speed.cache_info()
    warm = type_speeds(*args, seq=2048, global_batch=128)
    answered = _type_speed.cache_info()
    assert (searched.misses, searched.hits) == (2, 0)
    assert (answered.misses, answered.hits) == (2, 2), "the warm call searched again"
    assert warm == cold and warm is not cold
    type_speeds("llama3-8b", ("H20", "A100-80GB"), 8, seq=2048, global_batch=128)
    assert _type_speed.cache_info().misses == 3, "only the new type is searched"


def test_type_speeds_rejects_unknown_types():
    with pytest.raises(SpecError):
        type_speeds("llama3-8b", ["H100", "no-such-gpu"], 8)
