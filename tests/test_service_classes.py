"""Service classes (learned Gittins index of attained service) and preemption by class."""

from __future__ import annotations

import pytest
from sched_helpers import cluster, job, node, running, snapshot

from suan.sched import schedule
from suan.sched.decisions import WaitCode
from suan.sched.service import (
    LAS_CLASSES,
    MIN_SAMPLES,
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


def test_classes_halve_per_level_and_put_finished_needs_last():
    import numpy as np

    assert classes_from_indices(np.array([0.8, 0.4, 0.1, 0.0])) == (0, 1, 3, 4)


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
    decisions = schedule(snapshot(nodes, alloc, now=100.0), [job("new", devices=8, submit=50)],
                         "default")
    assert "new" in decisions.started()
    [preemption] = decisions.preemptions
    assert preemption.job == "old" and "service class" in preemption.reason


def test_no_preemption_within_a_class_or_against_higher_priority_or_without_the_flag():
    nodes, alloc = _busy_node(100.0)
    same = schedule(snapshot(nodes, alloc, now=100.0), [job("new", devices=8)], "default")
    assert not same.preemptions and same.reasons()["new"].code == WaitCode.CAPACITY
    nodes, alloc = _busy_node(40_000.0, priority=1)
    higher = schedule(snapshot(nodes, alloc, now=100.0), [job("new", devices=8)], "default")
    assert not higher.preemptions
    nodes, alloc = _busy_node(40_000.0)
    las = schedule(snapshot(nodes, alloc, now=100.0), [job("new", devices=8)], "las")
    assert not las.preemptions


def test_learned_classes_in_the_snapshot_decide_the_order():
    from dataclasses import replace

    classes = learn_classes({"default": [3600.0] * 90 + [100.0] * 10})
    nodes = cluster(node("n0", "V100", 8))
    jobs = [job("fresh", devices=8, submit=0), job("nearly", devices=8, submit=1,
                                                    attained=3000.0)]
    learned = schedule(replace(snapshot(nodes), service=classes), jobs, "default")
    assert list(learned.started()) == ["nearly"]
    plain = schedule(snapshot(nodes), jobs, "default")
    assert list(plain.started()) == ["fresh"]


def test_default_reserves_only_against_runtime_estimates():
    nodes = cluster(node("n0"), node("n1", rack="r1"))
    busy = running(job("busy", devices=8), ("n0", tuple(range(8))))
    jobs = [job("head", replicas=2, devices=8, submit=0), job("long", devices=4, submit=1)]
    default = schedule(snapshot(nodes, busy), jobs, "default")
    assert default.reservation is None and "long" in default.started()
    assumed = schedule(snapshot(nodes, busy), jobs, "backfill")
    assert assumed.reservation is not None and "long" not in assumed.started()
    estimated = running(job("busy", devices=8, estimate=3600.0), ("n0", tuple(range(8))))
    known = schedule(snapshot(nodes, estimated), jobs, "default")
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
