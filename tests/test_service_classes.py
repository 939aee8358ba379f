"""Service classes (learned Gittins index of attained service) and preemption by class."""

from __future__ import annotations

import pytest
from sched_helpers import cluster, job, node, running, snapshot

from suan.sched import decide
from suan.sched.decisions import WaitCode
from suan.sched.service import (
    LAS_CLASSES,
    MIN_SAMPLES,
    NO_INDEX_CLASS,
    TOP_INDEX,
    ServiceClasses,
    ServiceHistory,
    classes_from_indices,
    gittins_indices,
    learn_classes,
)


def test_gittins_index_worked_by_hand():
    # Needs 1, 1, 1, 10. A new job: stopping at b=1 finishes 3/4 for an expected cost of 1
    # (index 0.75); going on to 10 finishes all for 13/4 (0.31): the index is 0.75. After 1
    # device-second only the 10 is left: 1 / 9.
    indices = gittins_indices([1.0, 1.0, 1.0, 10.0], [0.0, 1.0, 10.0])
    assert indices[0] == pytest.approx(0.75)
    assert indices[1] == pytest.approx(1 / 9)
    assert indices[2] == 0.0


def test_classes_halve_per_level_on_one_scale_and_put_finished_needs_last():
    import numpy as np

    top = TOP_INDEX
    assert classes_from_indices(np.array([2 * top, top, top / 2, top / 8.5, 0.0])) == (
        0, 0, 1, 3, NO_INDEX_CLASS)


def test_a_job_close_to_the_common_need_is_served_before_a_new_one():
    # Most jobs of the queue need about an hour: one that has run 50 minutes is about to end.
    classes = learn_classes({"q": [3600.0] * 90 + [100.0] * 10})
    assert classes.level("q", 3000.0) < classes.level("q", 0.0)
    # LAS would do the opposite.
    assert LAS_CLASSES.level("q", 3000.0) == LAS_CLASSES.level("q", 0.0) == 0
    bound = classes.next_change("q", 0.0)
    assert bound is not None and classes.level("q", bound) != classes.level("q", 0.0)


def test_a_queue_without_enough_history_uses_las_classes():
    classes = learn_classes({"few": [10.0] * (MIN_SAMPLES - 1)})
    assert "few" not in classes.per_queue
    assert [classes.level("few", a) for a in (0.0, 4_000.0, 40_000.0)] == [0, 1, 2]
    assert classes.next_change("few", 0.0) is not None


def test_history_relearns_after_every_n_finished_jobs_from_a_recent_window():
    history = ServiceHistory(keep=100, every=10)
    for _ in range(MIN_SAMPLES - 1):
        history.add("q", 3600.0)
    assert not history.due and not history.relearn()
    history.add("q", 3600.0)
    assert history.due == {"q"} and history.relearn() and not history.due
    assert "q" in history.classes.per_queue
    for _ in range(300):
        history.add("q", 60.0)
    history.relearn()
    assert len(history.samples["q"]) == 100
    # Only short jobs are left in the window: a job past a minute is now the worst bet.
    assert history.classes.level("q", 120.0) > history.classes.level("q", 0.0)


def _busy_node(attained: float, priority: int = 0):  # type: ignore[no-untyped-def]
    nodes = cluster(node("n0", "V100", 8))
    old = job("old", devices=8, attained=attained, priority=priority)
    return nodes, running(old, ("n0", tuple(range(8))), start=0.0)


def test_default_preempts_a_job_in_a_worse_service_class():
    nodes, alloc = _busy_node(40_000.0)
    decisions = decide(snapshot(nodes, alloc, now=1000.0), [job("new", devices=8, submit=50)],
                       "default")
    assert "new" in decisions.started()
    [preemption] = decisions.preemptions
    assert preemption.job == "old" and "service class" in preemption.reason


def test_no_preemption_within_a_class_or_against_higher_priority_or_without_the_flag():
    nodes, alloc = _busy_node(100.0)
    same = decide(snapshot(nodes, alloc, now=100.0), [job("new", devices=8)], "default")
    assert not same.preemptions and same.reasons()["new"].code == WaitCode.CAPACITY
    nodes, alloc = _busy_node(40_000.0, priority=1)
    higher = decide(snapshot(nodes, alloc, now=100.0), [job("new", devices=8)], "default")
    assert not higher.preemptions
    nodes, alloc = _busy_node(40_000.0)
    las = decide(snapshot(nodes, alloc, now=100.0), [job("new", devices=8)], "las")
    assert not las.preemptions


def test_learned_classes_in_the_snapshot_decide_the_order():
    from dataclasses import replace

    classes = learn_classes({"default": [3600.0] * 90 + [100.0] * 10})
    nodes = cluster(node("n0", "V100", 8))
    jobs = [job("fresh", devices=8, submit=0), job("nearly", devices=8, submit=1,
                                                    attained=3000.0)]
    learned = decide(replace(snapshot(nodes), service=classes), jobs, "default")
    assert list(learned.started()) == ["nearly"]
    plain = decide(snapshot(nodes), jobs, "default")
    assert list(plain.started()) == ["fresh"]


def test_default_reserves_only_against_runtime_estimates():
    nodes = cluster(node("n0"), node("n1", rack="r1"))
    busy = running(job("busy", devices=8), ("n0", tuple(range(8))))
    jobs = [job("head", replicas=2, devices=8, submit=0), job("long", devices=4, submit=1)]
    default = decide(snapshot(nodes, busy), jobs, "default")
    assert default.reservation is None and "long" in default.started()
    assumed = decide(snapshot(nodes, busy), jobs, "backfill")
    assert assumed.reservation is not None and "long" not in assumed.started()
    estimated = running(job("busy", devices=8, estimate=3600.0), ("n0", tuple(range(8))))
    known = decide(snapshot(nodes, estimated), jobs, "default")
    assert known.reservation is not None and known.reservation["job"] == "head"


def test_service_classes_are_a_value_with_a_fallback():
    classes = ServiceClasses()
    assert classes.level("any", 0.0) == 0
    assert "LAS fallback" in classes.describe("any")


def test_the_simulator_learns_classes_from_the_jobs_that_finish():
    from dataclasses import replace

    from suan.cluster.generate import cluster_from_shorthand
    from suan.sim.simulator import SimConfig, Simulator
    from suan.sim.workload import TraceJob

    trace = [TraceJob(str(i), float(i), 100.0 if i % 2 else 10.0, 1) for i in range(120)]
    sim = Simulator(trace, cluster_from_shorthand("1x8xV100"),
                    replace(SimConfig(tick_s=None), policy="default"))
    result = sim.run()
    assert all(s.end is not None for s in result.jobs)
    assert sim.history is not None and "default" in sim.history.classes.per_queue
    assert sim.sched.service is sim.history.classes


def test_kaplan_meier_gives_the_mass_of_unfinished_jobs_to_longer_needs():
    from suan.sched.service import kaplan_meier

    # Needs 1 and 2 finished; one job has run 1.5 and goes on. At 1, 3 are at risk and one
    # ends (survival 2/3); at 2 only one is at risk and it ends: the censored job's share
    # moves to 2 (2/3 there rather than the naive 1/2).
    needs, mass = kaplan_meier([1.0, 2.0], [1.5])
    assert list(needs) == [1.0, 2.0]
    assert list(mass) == pytest.approx([1 / 3, 2 / 3])
    # A job still running beyond every finished need keeps the leftover mass there.
    needs, mass = kaplan_meier([1.0], [5.0])
    assert list(needs) == [1.0, 5.0] and list(mass) == pytest.approx([0.5, 0.5])


def test_weighted_gittins_equals_repeated_samples():
    weighted = gittins_indices([1.0, 10.0], [0.0, 1.0], [3.0, 1.0])
    repeated = gittins_indices([1.0, 1.0, 1.0, 10.0], [0.0, 1.0])
    assert list(weighted) == pytest.approx(list(repeated))


def _history_with_queue(queue_needs: list[float]) -> ServiceHistory:
    history = ServiceHistory()
    history.extend(("q", need) for need in queue_needs)
    return history


MIXED_QUEUE = [60.0] * 10 + [3_600.0] * 60 + [36_000.0] * 30


def test_a_series_whose_members_finished_short_is_served_before_unknown_jobs():
    history = _history_with_queue(MIXED_QUEUE)
    for _ in range(3):
        history.add("q", 100.0, series="sweep-a")
        history.add("q", 30_000.0, series="sweep-b")
    assert history.relearn()
    classes = history.classes
    unknown = classes.level("q", 0.0)
    assert classes.level("q", 0.0, "sweep-a") < unknown < classes.level("q", 0.0, "sweep-b")
    # An unseen series, or none, uses the queue's classes.
    assert classes.level("q", 0.0, "other") == unknown
    assert "series sweep-a" in classes.describe("q", "sweep-a")
    # A member that outlives its siblings by far falls back toward the queue's long jobs.
    assert classes.level("q", 2_000.0, "sweep-a") > classes.level("q", 0.0, "sweep-a")


def test_one_finished_member_says_less_than_many():
    one, many = _history_with_queue(MIXED_QUEUE), _history_with_queue(MIXED_QUEUE)
    one.add("q", 3_000.0, series="s")
    for _ in range(10):
        many.add("q", 3_000.0, series="s")
    one.relearn(), many.relearn()
    queue_level = one.classes.level("q", 0.0)
    assert queue_level <= one.classes.level("q", 0.0, "s") <= many.classes.level("q", 0.0, "s")
    assert one.classes.level("q", 0.0, "s") < many.classes.level("q", 0.0, "s")


def test_siblings_of_a_running_probe_wait_for_it_and_fall_as_it_runs_on():
    history = _history_with_queue(MIXED_QUEUE)
    queue_level = history.classes.level("q", 0.0)
    history.running("q", "s", 0.0)
    history.relearn()
    started = history.classes.level("q", 0.0, "s")
    assert started > queue_level
    # The probe itself (past the first cell) keeps the queue's classes.
    assert history.classes.level("q", 100.0, "s") == history.classes.level("q", 100.0)
    history.running("q", "s", 10_000.0)
    history.relearn()
    assert history.classes.level("q", 0.0, "s") > started
    # Its end tells: the series now has its own classes.
    history.add("q", 12_000.0, series="s")
    history.relearn()
    assert history.series["q", "s"].outlived is None


def test_the_history_keeps_a_bounded_number_of_series():
    history = ServiceHistory(keep_series=3)
    history.extend(("q", need) for need in MIXED_QUEUE)
    for index in range(5):
        history.add("q", 100.0, series=f"s{index}")
    history.relearn()
    assert list(history.series) == [("q", "s2"), ("q", "s3"), ("q", "s4")]
    assert set(history.classes.per_series) <= {("q", "s2"), ("q", "s3"), ("q", "s4")}


def test_burst_series_groups_close_submissions_of_one_shape():
    from suan.sim.workload import TraceJob, burst_series

    jobs = [TraceJob("a", 0.0, 10.0, 1), TraceJob("b", 30.0, 10.0, 1),
            TraceJob("c", 50.0, 10.0, 2), TraceJob("d", 80.0, 10.0, 2),
            TraceJob("e", 500.0, 10.0, 2), TraceJob("f", 10.0, 10.0, 1, queue="other"),
            TraceJob("g", 0.0, 10.0, 1, queue="named", series="given")]
    named = {job.job_id: job.series for job in burst_series(jobs, gap_s=60.0, span_s=600.0)}
    assert named["a"] == named["b"] == "burst-a"
    assert named["c"] == named["d"] == "burst-c"
    assert named["e"] == "burst-e" and named["f"] == "burst-f" and named["g"] == "given"
    # A long chain of close submissions is cut into series of at most span_s.
    chain = [TraceJob(str(i), 50.0 * i, 10.0, 1) for i in range(30)]
    spans = {job.series for job in burst_series(chain, gap_s=60.0, span_s=600.0)}
    assert len(spans) == 3


def test_the_simulator_serves_a_series_known_to_be_short_first():
    from dataclasses import replace

    from suan.cluster.generate import cluster_from_shorthand
    from suan.sim.metrics import summarise
    from suan.sim.simulator import SimConfig, Simulator
    from suan.sim.workload import TraceJob

    # A history of mixed jobs, then two sweeps submitted together on one busy GPU: ten
    # 2,000-s jobs just before ten 20-s ones. The queue alone cannot tell them apart; once a
    # member of each has finished, the short sweep's members go first.
    warm = [TraceJob(f"w{i}", float(i), 20.0 if i % 2 else 2_000.0, 1) for i in range(60)]
    start = 80_000.0
    sweeps = [TraceJob(f"l{i}", start + i, 2_000.0, 1, series="long") for i in range(10)]
    sweeps += [TraceJob(f"s{i}", start + 10 + i, 20.0, 1, series="short") for i in range(10)]

    def short_jct(jobs: list[TraceJob]) -> float:
        sim = Simulator(jobs, cluster_from_shorthand("1x1xV100"),
                        replace(SimConfig(tick_s=None), policy="default"))
        result = sim.run()
        assert summarise(result)["finished"] == len(jobs)
        ends = [s.end - s.trace.submit_time for s in result.jobs if s.trace.job_id[0] == "s"]
        return sum(ends) / len(ends)

    plain = [replace(job, series="") for job in sweeps]
    assert short_jct(warm + sweeps) < 0.5 * short_jct(warm + plain)
