"""The simulator on a hand-made heterogeneous cluster: type choice by the job's own speeds,
moves and swaps, with completion times worked out by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from suan.catalog import default_catalog
from suan.cluster.generate import cluster_from_shorthand
from suan.sched import get_policy
from suan.sched.phases import QUEUE, REBALANCE
from suan.sim import SimConfig, TraceJob, simulate
from suan.sim.metrics import summarise
from suan.sim.simulator import type_speeds

ONE_EACH = "1x1xV100+1x1xK80"
EVENTS = SimConfig(tick_s=None)
MIGRATE = replace(get_policy("fifo-besteffort"), name="fifo-migrate", phases=(QUEUE, REBALANCE))


def traced(job_id: str, submit: float, v100: float, k80: float) -> TraceJob:
    return TraceJob(job_id, submit, v100, 1, durations={"V100": v100, "K80": k80})


def jcts(jobs: list[TraceJob], policy) -> dict[str, float]:  # type: ignore[no-untyped-def]
    result = simulate(jobs, cluster_from_shorthand(ONE_EACH), policy, EVENTS)
    return {s.trace.job_id: s.end - s.trace.submit_time for s in result.jobs}  # type: ignore[operator]


def test_speeds_come_from_the_durations_fastest_type_first():
    job = traced("0", 0.0, 200.0, 100.0)
    assert type_speeds(job, default_catalog()) == (("K80", 1.0), ("V100-16GB", 0.5))
    assert type_speeds(TraceJob("1", 0.0, 10.0, 1), default_catalog()) == ()


def test_a_job_faster_on_the_k80_runs_there():
    # 200 s on the V100, 100 s on the K80: the K80 by its own speeds, JCT 100 (not 200).
    assert jcts([traced("0", 0.0, 200.0, 100.0)], "fifo-besteffort") == {"0": 100.0}


def test_a_job_started_on_the_slow_type_moves_when_the_fast_one_frees():
    # Job a takes the V100 (100 s). Job b (V100 100 s, K80 150 s) starts on the K80 rather
    # than wait. At t=100 it has done 100/150 = 2/3 of its work; it moves to the V100 and
    # finishes the last third in 100/3 s: JCT 133.3. Without moves it stays: JCT 150.
    jobs = [traced("a", 0.0, 100.0, 400.0), traced("b", 0.0, 100.0, 150.0)]
    assert jcts(jobs, MIGRATE) == pytest.approx({"a": 100.0, "b": 100.0 + 100.0 / 3})
    assert jcts(jobs, "fifo-besteffort") == pytest.approx({"a": 100.0, "b": 150.0})


def test_a_new_job_swaps_with_a_veteran_and_the_veteran_moves_back():
    # Veteran v (V100 10,000 s, K80 20,000 s) runs alone on the V100 from t=0. At t=5,000
    # it has attained 5,000 device-seconds (LAS level 1) and is half done when newcomer n
    # (V100 100 s, K80 1,000 s) arrives: n is more urgent, so it takes the V100 and v
    # restarts on the K80. n ends at 5,100 (JCT 100). By then v has done 100/20,000 more
    # (0.505 in all); it moves back to the V100 and needs 0.495 x 10,000 = 4,950 s: it ends
    # at 10,050. Without moves: v 10,000, n on the K80 1,000.
    jobs = [traced("v", 0.0, 10_000.0, 20_000.0), traced("n", 5_000.0, 100.0, 1_000.0)]
    assert jcts(jobs, MIGRATE) == pytest.approx({"v": 10_050.0, "n": 100.0})
    assert jcts(jobs, "fifo-besteffort") == pytest.approx({"v": 10_000.0, "n": 1_000.0})
    result = simulate(jobs, cluster_from_shorthand(ONE_EACH), MIGRATE, EVENTS)
    figures = summarise(result)
    assert (figures["migrations"], figures["preemptions"]) == (2, 0)
    assert figures["avg_jct_s"] == pytest.approx(5_075.0)


def test_moves_keep_work_only_to_the_last_checkpoint():
    # As the move test, but checkpoints every 60 s of work: at t=100 job b has 60 s of its
    # 150 saved (0.4); on the V100 the remaining 0.6 takes 60 s: JCT 160 (worse than 150,
    # the price of a move that loses work).
    jobs = [traced("a", 0.0, 100.0, 400.0), traced("b", 0.0, 100.0, 150.0)]
    config = replace(EVENTS, runtime=replace(EVENTS.runtime, checkpoint_interval_s=60.0))
    result = simulate(jobs, cluster_from_shorthand(ONE_EACH), MIGRATE, config)
    ends = {s.trace.job_id: s.end for s in result.jobs}
    assert ends == pytest.approx({"a": 100.0, "b": 160.0})
