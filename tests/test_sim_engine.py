"""The simulator engine: event order, hand-worked schedules, determinism, and the contract
that it calls the same scheduler as everything else."""

from __future__ import annotations

import pytest

import suan.sched.phases
from suan.cluster.generate import cluster_from_shorthand
from suan.sim import SimConfig, TraceJob, simulate
from suan.sim.events import EventQueue, Kind
from suan.sim.metrics import summarise


def one_node():
    return cluster_from_shorthand("1x8xV100")


def three_jobs() -> list[TraceJob]:
    """Three whole-node jobs: a long one first, then a medium and a short one."""
    return [TraceJob("a", 0, 100, 8), TraceJob("b", 1, 50, 8), TraceJob("c", 2, 10, 8)]


def ends(result) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {s.trace.job_id: s.end for s in result.jobs}


def test_events_at_one_time_come_out_together_finishes_first():
    queue = EventQueue()
    queue.push(5, Kind.ARRIVAL, 1)
    queue.push(5, Kind.FINISH, 2)
    queue.push(3, Kind.TICK)
    assert [e.kind for e in queue.pop_batch()] == [Kind.TICK]
    batch = queue.pop_batch()
    assert [e.kind for e in batch] == [Kind.FINISH, Kind.ARRIVAL] and queue.now == 5
    with pytest.raises(ValueError):
        queue.push(4, Kind.TICK)


def test_fifo_runs_three_jobs_in_arrival_order():
    result = simulate(three_jobs(), one_node(), "fifo")
    assert ends(result) == {"a": 100, "b": 150, "c": 160}
    assert summarise(result)["avg_jct_s"] == pytest.approx((100 + 149 + 158) / 3)


def test_sjf_lets_the_short_job_overtake_the_medium_one():
    result = simulate(three_jobs(), one_node(), "sjf")
    assert ends(result) == {"a": 100, "c": 110, "b": 160}
    assert summarise(result)["avg_jct_s"] == pytest.approx((100 + 159 + 108) / 3)


def test_preemptive_srtf_stops_the_long_job_for_shorter_ones():
    result = simulate(three_jobs(), one_node(), "srtf-preemptive")
    # b preempts a at t=1 (49 s left vs 99); c preempts b at t=2 (10 vs 49); then b, then a.
    assert ends(result) == {"c": 12, "b": 61, "a": 160}
    assert {s.trace.job_id: s.preemptions for s in result.jobs} == {"a": 1, "b": 1, "c": 0}


def test_preemptive_las_demotes_a_job_that_ran_past_the_first_threshold():
    # 1 GPU each on a 1-GPU node: a has run 3,600 device-seconds at t=3600, b waits since t=10.
    cluster = cluster_from_shorthand("1x1xV100")
    jobs = [TraceJob("a", 0, 5000, 1), TraceJob("b", 10, 100, 1)]
    result = simulate(jobs, cluster, "las-preemptive")
    assert ends(result) == {"b": 3700, "a": 5100}


def test_same_inputs_give_the_same_result():
    cluster = cluster_from_shorthand("2x8xV100")
    jobs = [TraceJob(str(i), i * 7.0, 30 + (i * 37) % 200, 1 + (i % 4) * 2) for i in range(60)]
    first = [(s.first_start, s.end) for s in simulate(jobs, cluster, "default").jobs]
    second = [(s.first_start, s.end) for s in simulate(jobs, cluster, "default").jobs]
    assert first == second


def mixed_jobs() -> list[TraceJob]:
    return [TraceJob(str(i), i * 11.0, 50 + (i * 53) % 400, (1, 2, 4, 8, 16)[i % 5],
                     queue=f"q{i % 3}") for i in range(80)]


@pytest.mark.parametrize("policy", ["fifo", "las", "srtf-preemptive", "las-preemptive", "backfill",
                                    "priority"])
def test_kept_state_gives_the_same_schedule_as_fresh_cycles(policy):
    cluster = cluster_from_shorthand("3x8xV100")
    warm = simulate(mixed_jobs(), cluster, policy, SimConfig(warm=True))
    cold = simulate(mixed_jobs(), cluster, policy, SimConfig(warm=False))
    assert [(s.first_start, s.end) for s in warm.jobs] == [(s.first_start, s.end)
                                                           for s in cold.jobs]


@pytest.mark.parametrize("policy", ["default", "fairshare"])
def test_kept_state_differs_from_fresh_cycles_only_by_tie_breaking(policy):
    # A kept ledger lists equally free nodes in a different order than a fresh one, so a tie
    # may go to another node; the schedule stays as good.
    cluster = cluster_from_shorthand("3x8xV100")
    warm = summarise(simulate(mixed_jobs(), cluster, policy, SimConfig(warm=True)))
    cold = summarise(simulate(mixed_jobs(), cluster, policy, SimConfig(warm=False)))
    assert warm["avg_jct_s"] == pytest.approx(cold["avg_jct_s"], rel=0.02)


def test_the_simulator_runs_the_schedulers_own_cycle(monkeypatch):
    calls = []
    original = suan.sched.phases.QueuePhase.run

    def counting(self, cycle):  # type: ignore[no-untyped-def]
        calls.append(len(cycle.pending))
        return original(self, cycle)

    monkeypatch.setattr(suan.sched.phases.QueuePhase, "run", counting)
    result = simulate(three_jobs(), one_node(), "fifo", SimConfig(tick_s=None))
    assert len(calls) == result.cycles > 0
    cold = simulate(three_jobs(), one_node(), "fifo", SimConfig(tick_s=None, warm=False))
    assert len(calls) == result.cycles + cold.cycles


def test_a_job_larger_than_the_cluster_is_rejected_not_waited_for_forever():
    result = simulate([TraceJob("huge", 0, 10, 64), TraceJob("ok", 0, 10, 8)], one_node(), "fifo")
    figures = summarise(result)
    assert figures["rejected"] == 1 and figures["finished"] == 1


@pytest.mark.parametrize("policy", ["fifo-besteffort", "las-preemptive"])
def test_a_queue_depth_larger_than_the_queue_changes_nothing(policy):
    cluster = cluster_from_shorthand("2x8xV100")
    full = simulate(mixed_jobs(), cluster, policy)
    windowed = simulate(mixed_jobs(), cluster, policy, SimConfig(queue_depth=1000))
    assert [s.end for s in full.jobs] == [s.end for s in windowed.jobs]
