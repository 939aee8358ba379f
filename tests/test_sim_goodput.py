"""The simulator's checkpoint rule and goodput figures: a job with a checkpoint cost saves at
Daly's interval for its MTBF under the failure model and pays for each save; every finished
job's JCT splits into queue wait, restart, lost work, checkpoint and productive time."""

from __future__ import annotations

import pytest

from suan.checkpoint_interval import best_interval_s
from suan.cluster.generate import cluster_from_shorthand
from suan.sim import SimConfig, TraceJob, simulate
from suan.sim.failures import DAY, FailureModel
from suan.sim.metrics import GOODPUT_PARTS, job_goodput, summarise
from suan.sim.runtime import RuntimeModel, checkpoint_plan


def test_the_plan_is_dalys_interval_for_the_jobs_mtbf_unless_the_trace_fixes_one():
    failures = FailureModel(node_mtbf_s=100 * DAY, device_mtbf_s=800 * DAY)
    job = TraceJob("a", 0, 1000, 16, checkpoint_cost_s=20)
    mtbf = 1 / (2 / (100 * DAY) + 16 / (800 * DAY))
    assert checkpoint_plan(job, 2, failures) == (pytest.approx(best_interval_s(20, mtbf)), 20)
    fixed = TraceJob("b", 0, 1000, 16, checkpoint_cost_s=20, checkpoint_interval_s=600)
    assert checkpoint_plan(fixed, 2, failures) == (600, 20)
    assert checkpoint_plan(TraceJob("c", 0, 1000, 16), 2, failures) is None


def test_saves_stretch_the_run_and_show_as_checkpoint_time():
    job = TraceJob("a", 0, 3600, 8, checkpoint_cost_s=10, checkpoint_interval_s=90)
    result = simulate([job], cluster_from_shorthand("1x8xV100"), "fifo", SimConfig())
    [state] = result.jobs
    assert state.end == pytest.approx(3600 * 100 / 90)
    figures = job_goodput(state)
    assert figures is not None
    assert figures["checkpoint_s"] == pytest.approx(400)
    assert figures["productive_s"] == pytest.approx(3600)
    assert figures["queue_wait_s"] == figures["lost_s"] == figures["restart_s"] == 0


def test_goodput_parts_sum_to_each_jobs_jct_under_preemption_and_failures():
    runtime = RuntimeModel(checkpoint_interval_s=30, restart_overhead_s=5)
    jobs = [TraceJob("a", 0, 100, 8), TraceJob("b", 40, 10, 8)]
    result = simulate(jobs, cluster_from_shorthand("1x8xV100"), "srtf-preemptive",
                      SimConfig(runtime=runtime))
    by_id = {s.trace.job_id: job_goodput(s) for s in result.jobs}
    a = by_id["a"]
    assert a is not None
    # a: preempted at 40 with 30 s saved (10 s lost), waits 10 s, restarts for 5 s
    assert (a["lost_s"], a["queue_wait_s"], a["restart_s"]) == pytest.approx((10, 10, 5))
    assert a["productive_s"] == pytest.approx(100)
    for state in result.jobs:
        parts = job_goodput(state)
        assert sum(parts[name] for name in GOODPUT_PARTS) == pytest.approx(
            state.end - state.trace.submit_time)

    failing = SimConfig(failures=FailureModel(node_mtbf_s=2 * 3600, repair_s=600, seed=3),
                        runtime=RuntimeModel(restart_overhead_s=60))
    jobs = [TraceJob(str(i), i * 50, 4 * 3600, 8, checkpoint_cost_s=30) for i in range(6)]
    result = simulate(jobs, cluster_from_shorthand("4x8xV100"), "fifo", failing)
    summary = summarise(result)
    assert result.failures > 0 and summary["goodput_gpu_s"]["lost"] > 0
    assert summary["goodput_gpu_s"]["checkpoint"] > 0
    assert 0 < summary["runtime_goodput"] < 1
    for state in result.jobs:
        parts = job_goodput(state)
        assert parts is not None
        assert sum(parts[name] for name in GOODPUT_PARTS) == pytest.approx(
            state.end - state.trace.submit_time, rel=1e-6)
