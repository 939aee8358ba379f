"""The runtime model: speed by accelerator and spread, lost work, failures and repairs."""

from __future__ import annotations

import pytest

from suan.catalog import default_catalog
from suan.cluster.generate import cluster_from_shorthand
from suan.cluster.snapshot import ReplicaPlacement
from suan.sim import SimConfig, TraceJob, simulate
from suan.sim.failures import FailureModel
from suan.sim.runtime import RuntimeModel, Slowdown


def test_a_slower_type_stretches_the_run_time_by_its_relative_speed():
    catalog = default_catalog()
    job = TraceJob("a", 0, 1000, 1)
    model = RuntimeModel()
    k80 = catalog.get("K80").relative_speed
    assert model.exclusive_s(job, "V100-16GB", catalog) == pytest.approx(1000)
    assert model.exclusive_s(job, "K80", catalog) == pytest.approx(1000 / k80)
    assert RuntimeModel(speeds={"K80": 0.5}).exclusive_s(job, "K80", catalog) == 2000


def test_per_type_durations_win_over_relative_speed():
    job = TraceJob("g", 0, 100, 1, durations={"V100": 100, "K80": 900})
    assert RuntimeModel().exclusive_s(job, "K80", default_catalog()) == 900


def test_spread_slowdown_takes_the_widest_span():
    cluster = cluster_from_shorthand("64x8xV100", nodes_per_rack=32)
    model = RuntimeModel(slowdown=Slowdown.parse("node=1.2,rack=1.5"))
    same_rack = (ReplicaPlacement(0, "node-00000", (0,)), ReplicaPlacement(0, "node-00001", (0,)))
    two_racks = (ReplicaPlacement(0, "node-00000", (0,)), ReplicaPlacement(0, "node-00040", (0,)))
    assert model.spread_factor(cluster, same_rack[:1]) == 1.0
    assert model.spread_factor(cluster, same_rack) == 1.2
    assert model.spread_factor(cluster, two_racks) == 1.5


def test_preemption_loses_the_work_since_the_last_checkpoint_plus_the_restart():
    runtime = RuntimeModel(checkpoint_interval_s=30, restart_overhead_s=5)
    jobs = [TraceJob("a", 0, 100, 8), TraceJob("b", 40, 10, 8)]
    result = simulate(jobs, cluster_from_shorthand("1x8xV100"), "srtf-preemptive",
                      SimConfig(runtime=runtime))
    ends = {s.trace.job_id: s.end for s in result.jobs}
    # a saved 30 s of work at t=30, is preempted at 40 (10 s lost), resumes at 50 after b,
    # restarts for 5 s and needs 70 s more.
    assert ends == {"b": 50, "a": 125}
    assert result.jobs[0].lost_gpu_s == 8 * 10


def test_without_checkpoints_a_stopped_job_starts_over():
    runtime = RuntimeModel(checkpoint_interval_s=None)
    jobs = [TraceJob("a", 0, 100, 8), TraceJob("b", 40, 10, 8)]
    result = simulate(jobs, cluster_from_shorthand("1x8xV100"), "srtf-preemptive",
                      SimConfig(runtime=runtime))
    assert {s.trace.job_id: s.end for s in result.jobs} == {"b": 50, "a": 150}


def test_node_failures_stop_jobs_and_the_node_comes_back_after_repair():
    failures = FailureModel(node_mtbf_s=500, repair_s=100, seed=3)
    jobs = [TraceJob(str(i), i * 50.0, 400, 8) for i in range(6)]
    config = SimConfig(failures=failures, runtime=RuntimeModel(checkpoint_interval_s=60))
    result = simulate(jobs, cluster_from_shorthand("2x8xV100"), "fifo", config)
    again = simulate(jobs, cluster_from_shorthand("2x8xV100"), "fifo", config)
    assert result.failures > 0 and sum(s.failures for s in result.jobs) > 0
    assert all(s.end is not None for s in result.jobs)
    assert [s.end for s in result.jobs] == [s.end for s in again.jobs]


@pytest.mark.parametrize(("gpus", "shape"), [(1, (1, 1)), (8, (1, 8)), (16, (2, 8)),
                                             (12, (3, 4)), (24, (3, 8)), (128, (16, 8))])
def test_a_trace_job_becomes_a_gang_that_fills_whole_nodes(gpus, shape):
    from suan.sim.workload import replica_shape

    assert replica_shape(gpus, 8) == shape


def test_utilisation_counts_the_work_that_survived():
    from suan.sim.metrics import summarise

    # Two 4-GPU jobs of 100 s on one 8-GPU node: half the node busy for 100 s, then idle
    # until the second, submitted at 150 s, ends at 250 s.
    jobs = [TraceJob("a", 0, 100, 4), TraceJob("b", 150, 100, 4)]
    figures = summarise(simulate(jobs, cluster_from_shorthand("1x8xV100"), "fifo"))
    assert figures["makespan_s"] == 250
    assert figures["gpu_utilization"] == pytest.approx((4 * 100 * 2) / (8 * 250))
    assert figures["gpu_allocation"] == pytest.approx(figures["gpu_utilization"])
