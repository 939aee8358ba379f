"""Pending jobs kept between cycles (`suan.sched.pending_index`), the waiting list of a cycle
(`suan.sched.decisions.WaitList`) and the budget of starts (`suan.sched.budget`): a cycle over
an index kept across a recorded sequence decides exactly as a cycle that keeps nothing."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from sched_helpers import assert_same, job, plain_walk

from suan.cluster.generate import generate_cluster
from suan.cluster.model import Cluster, NodeHealth
from suan.cluster.snapshot import Allocation, Snapshot
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.sched import POLICIES, CarriedState, Pending, WaitCode, decide, schedule
from suan.sched.budget import MAX_STARTS
from suan.sched.decisions import WaitList
from suan.sched.pending_index import COMPACT_AFTER, PendingIndex
from suan.sim.simulator import simulate
from suan.sim.workload import TraceJob


def names(index: PendingIndex) -> list[str]:
    return sorted(j.name for j in index)


# ------------------------------------------------------------------ the index
def test_index_files_alike_jobs_in_one_class_in_submit_order() -> None:
    jobs = [job("c", submit=3.0), job("a", submit=1.0), job("b", submit=2.0),
            job("big", devices=8, submit=0.0)]
    index = PendingIndex(jobs)
    by_size = {c.members[c.head].devices: [j.name for j in c.members[c.head:]]
               for c in index.live_classes()}
    assert by_size == {1.0: ["a", "b", "c"], 8.0: ["big"]}


def test_index_add_discard_and_sync_track_the_waiting_set() -> None:
    index = PendingIndex([job("a", submit=1.0), job("b", submit=2.0)])
    index.add(job("c", submit=0.5))  # inserted before the others
    index.add(job("d", submit=9.0))  # appended
    assert index.discard("b") is not None
    assert index.discard("missing") is None
    assert names(index) == ["a", "c", "d"]
    [members] = [c.members[c.head:] for c in index.live_classes()]
    assert [j.name for j in members] == ["c", "a", "d"]
    index.sync([job("a", submit=1.0), job("e", submit=3.0)])
    assert names(index) == ["a", "e"] and "d" not in index and len(index) == 2


def test_a_job_that_changes_class_moves() -> None:
    index = PendingIndex([job("a"), job("b")])
    index.add(job("a", priority=5))
    sizes = sorted(len(c) for c in index.live_classes())
    assert sizes == [1, 1] and len(index) == 2


def test_groups_recorded_earlier_keep_their_members_while_the_index_changes() -> None:
    jobs = [job(f"j{i:03d}", submit=float(i)) for i in range(3 * COMPACT_AFTER)]
    index = PendingIndex(jobs)
    [job_class] = index.live_classes()
    waits = WaitList()
    waits.add_group(job_class.members, job_class.head, len(job_class.members), "why",
                    WaitCode.CAPACITY)
    before = [w.job for w in waits]
    for early in jobs[: 2 * COMPACT_AFTER]:  # from the head: compacts the list
        index.discard(early.name)
    index.discard(jobs[-5].name)  # from the middle: copies the list
    index.add(job("late", submit=1e9))
    index.add(job("early", submit=-1.0))
    assert [w.job for w in waits] == before
    assert len(index) == COMPACT_AFTER - 1 + 2


# ------------------------------------------------------------------ the waiting list
def test_wait_list_reads_groups_as_single_entries() -> None:
    members = [job(f"m{i}") for i in range(5)]
    waits = WaitList([Pending("x", "first", WaitCode.QUOTA)])
    waits.add_group(members, 1, 4, "busy", WaitCode.CAPACITY)
    waits.add_group(members, 2, 2, "never", WaitCode.SHAPE)
    waits.append(Pending("y", "last", WaitCode.HEALTH))
    assert len(waits) == 5
    assert [w.job for w in waits] == ["x", "m1", "m2", "m3", "y"]
    assert waits[1] == Pending("m1", "busy", WaitCode.CAPACITY)
    assert waits[-1].job == "y" and [w.job for w in waits[1:3]] == ["m1", "m2"]
    assert [(list(n), r) for n, r, _ in waits.groups()] == [
        (["x"], "first"), (["m1", "m2", "m3"], "busy"), (["y"], "last")]
    with pytest.raises(IndexError):
        waits[5]


# ------------------------------------------------------------------ the budget
def test_the_budget_defers_the_jobs_beyond_it_and_the_next_cycle_takes_them() -> None:
    the_cluster = generate_cluster(4, "H100")
    pending = [job(f"j{i}", submit=float(i)) for i in range(10)] + [
        job("huge", devices=8, replicas=9, submit=-1.0),
        job("huge2", devices=8, replicas=9, submit=20.0),
        job("other", devices=2, submit=21.0)]
    snap = Snapshot(the_cluster, (), (QueueSpec("default"),), 0.0)
    first = decide(snap, pending, "fifo-besteffort", max_starts=4)
    assert [s.job.name for s in first.starts] == ["j0", "j1", "j2", "j3"]
    codes = {w.job: w.code for w in first.pending}
    # huge2 gets the verdict remembered from huge without a try; the rest wait for a try.
    assert codes["huge"] == codes["huge2"] == WaitCode.UNSCHEDULABLE
    assert {codes[f"j{i}"] for i in range(4, 10)} == {codes["other"]} == {WaitCode.DEFERRED}
    assert first.deferred == 7
    running = tuple(Allocation(s.job, s.replicas, 0.0) for s in first.starts)
    second = decide(Snapshot(the_cluster, running, (QueueSpec("default"),), 0.0), pending,
                      "fifo-besteffort", max_starts=4)
    assert [s.job.name for s in second.starts] == ["j4", "j5", "j6", "j7"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_a_bad_budget_is_refused_by_name(bad: object) -> None:
    snap = Snapshot(generate_cluster(1, "H100"), (), (QueueSpec("default"),), 0.0)
    with pytest.raises(ValueError, match="max_starts"):
        decide(snap, [job("a")], "fifo", max_starts=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ parked jobs stay current
def test_parked_jobs_follow_a_cordon_and_start_after_uncordon() -> None:
    """Jobs parked in the index while their nodes are cordoned say so, and start once the
    nodes are back: the kept state never holds a stale verdict."""
    the_cluster = generate_cluster(2, "H100")
    queues = (QueueSpec("default"),)
    index = PendingIndex([job("pair", devices=8, replicas=2), job("pair2", devices=8,
                                                                  replicas=2, submit=1.0)])
    cordoned = the_cluster.with_health(the_cluster.nodes[1].name, NodeHealth.CORDONED)
    waiting, state = schedule(Snapshot(cordoned, (), queues, 0.0), index, "default")
    assert {w.code for w in waiting.pending} == {WaitCode.HEALTH}
    assert all("cordoned" in w.reason for w in waiting.pending)
    again, state = schedule(Snapshot(cordoned, (), queues, 60.0), index, "default", state)
    assert not again.starts and len(again.pending) == 2
    back, state = schedule(Snapshot(the_cluster, (), queues, 120.0), index, "default", state)
    assert [s.job.name for s in back.starts] == ["pair"]
    assert back.reasons()["pair2"].code == WaitCode.CAPACITY


# ------------------------------------------------------------------ a recorded sequence
QUEUES = ("qa", "qb", "qc")
SIZES = ((1, 1), (1, 2), (1, 4), (1, 8), (2, 8), (4, 8))


def workload(rng: random.Random, start: int, count: int, now: float) -> list[Job]:
    """`count` jobs of a few shapes, so that classes have many members."""
    made = []
    for index in range(start, start + count):
        replicas, devices = SIZES[rng.randrange(len(SIZES))]
        made.append(job(f"j{index:04d}", replicas=replicas, devices=devices,
                        queue=QUEUES[index % 3], priority=int(rng.random() < 0.2),
                        submit=now + index, estimate=rng.choice([None, 3600.0]),
                        within="block" if replicas > 2 else None))
    return made


def queue_tree(guarantee: int) -> tuple[QueueSpec, ...]:
    teams = [QueueSpec(name, parent="org", guaranteed={"accelerators": guarantee},
                       borrow_limit={"accelerators": guarantee}) for name in QUEUES]
    return (QueueSpec("org"), *teams)


@pytest.mark.parametrize("policy", ["default", "fifo", "priority", "backfill"])
def test_an_index_kept_across_cycles_decides_as_a_cycle_that_keeps_nothing(
        policy: str) -> None:
    """Sixteen cycles with arrivals, finishes, preemptions, a cordon and uncordon of most nodes
    and a quota edit: the cycle over the index kept between cycles and the plain walk over
    the pending list (no state) make the same decisions, budget included."""
    rng = random.Random(5)
    base = generate_cluster(24, "H100", nodes_per_rack=4, racks_per_block=2)
    the_cluster: Cluster = base
    queues = queue_tree(48)
    pending = {j.name: j for j in workload(rng, 0, 400, 0.0)}
    index = PendingIndex(pending.values())
    running: dict[str, Allocation] = {}
    chosen, seen_codes, now, made = POLICIES.get(policy), set(), 0.0, 400
    state = CarriedState()
    for cycle in range(16):
        snap = Snapshot(the_cluster, tuple(running.values()), queues, now)
        warm, state = schedule(snap, index, chosen, state, max_starts=20)
        assert_same(warm, plain_walk(snap, list(pending.values()), chosen, 20))
        seen_codes |= {w.code for w in warm.pending}
        for victim in warm.preemptions:
            back = replace(running.pop(victim.job).job, attained_service_s=60.0)
            pending[back.name] = back
            index.add(back)
        for start in warm.starts:
            running[start.job.name] = Allocation(start.job, start.replicas, now)
            del pending[start.job.name]
            index.discard(start.job.name)
        for name in rng.sample(sorted(running), len(running) // 4):
            del running[name]
        for arrived in workload(rng, made, 30, now):
            pending[arrived.name] = arrived
            index.add(arrived)
        made += 30
        if cycle == 3:
            for gone in base.nodes[:22]:
                the_cluster = the_cluster.with_health(gone.name, NodeHealth.CORDONED)
        if cycle == 7:
            the_cluster = base
        if cycle == 10:
            queues = queue_tree(16)
        now += 600.0
    assert WaitCode.DEFERRED in seen_codes
    assert sorted(j.name for j in index) == sorted(pending)


# ------------------------------------------------------------------ callers rerun at once
def test_the_simulator_runs_the_next_cycle_at_once_when_a_cycle_defers_jobs() -> None:
    """More jobs arrive together than one cycle may start: the simulator cycles again at the
    same time, so every job that fits starts at its arrival."""
    count = MAX_STARTS + 200
    jobs = [TraceJob(f"t{i}", 0.0, 600.0, 1) for i in range(count)]
    cluster = generate_cluster(count // 8 + 1, "H100")
    result = simulate(jobs, cluster, "fifo-besteffort")
    assert result.cycles >= 2
    assert {state.first_start for state in result.jobs} == {0.0}
