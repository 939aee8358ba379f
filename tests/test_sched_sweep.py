"""The class-wise walk of a cycle (`suan.sched.sweep`, used for a kept `PendingIndex` and for
long lists) decides exactly as the plain walk over every pending job in policy order, budget
included, on random clusters, queues, running work and queues of many alike jobs, under every
registered policy; and a long list is walked as its index is."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_helpers import assert_same, job, node, plain_walk, snapshot

from suan.cluster.model import Cluster, NodeHealth
from suan.cluster.snapshot import Allocation, ReplicaPlacement
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.sched import POLICIES, WaitCode, decide
from suan.sched.pending_index import PendingIndex
from suan.sched.sweep import CLASS_WALK_FROM

TYPES = ("H100", "910B", "P800")
QUEUES = ("qa", "qb", "qc")


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    count = draw(st.integers(1, 8))
    nodes = []
    for index in range(count):
        health = draw(st.sampled_from([NodeHealth.READY] * 4 + list(NodeHealth)))
        nodes.append(node(f"n{index}", draw(st.sampled_from(TYPES)), rack=f"r{index // 2}",
                          block=f"b{index // 4}", health=health))
    return Cluster(nodes)


@st.composite
def queue_trees(draw: st.DrawFn) -> tuple[QueueSpec, ...]:
    specs = [QueueSpec("org")]
    for name in QUEUES:
        borrow = draw(st.sampled_from([None, 0, 4]))
        specs.append(QueueSpec(
            name, parent="org", guaranteed={"accelerators": draw(st.sampled_from([0, 4, 8]))},
            borrow_limit=None if borrow is None else {"accelerators": borrow}))
    return tuple(specs)


@st.composite
def alike_jobs(draw: st.DrawFn, prefix: str, count: int, top: int = 2) -> list[Job]:
    """Jobs drawn from a few templates, so that classes have several members."""
    templates = [
        dict(replicas=draw(st.integers(1, 2)), devices=draw(st.sampled_from([1, 2, 4, 8])),
             types=draw(st.sampled_from([(), ("H100",), ("910B", "H100"), ("P800",)])),
             estimate=draw(st.sampled_from([None, 600.0, 7200.0])),
             within=draw(st.sampled_from([None, None, "rack"])))
        for _ in range(draw(st.integers(1, 3)))
    ]
    made = []
    for index in range(count):
        template = templates[draw(st.integers(0, len(templates) - 1))]
        made.append(job(f"{prefix}{index}", queue=draw(st.sampled_from(QUEUES)),
                        priority=draw(st.integers(0, top)),
                        submit=float(draw(st.integers(0, 3 * count))),
                        preemptible=draw(st.booleans()), **template))  # type: ignore[arg-type]
    return made


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_class_walk_decides_as_the_plain_walk(data: st.DataObject) -> None:
    the_cluster = data.draw(clusters())
    queues = data.draw(queue_trees())
    policy = POLICIES.get(data.draw(st.sampled_from(POLICIES.names())))
    earlier = data.draw(alike_jobs("old", data.draw(st.integers(0, 16)), top=0))
    first = decide(snapshot(the_cluster, queues=queues), earlier, "fifo-besteffort")
    running = [Allocation(s.job, s.replicas, 0.0) for s in first.starts]
    pending = data.draw(alike_jobs("new", data.draw(st.integers(1, 40))))
    max_starts = data.draw(st.sampled_from([1, 2, 3, 5, 1000]))
    snap = snapshot(the_cluster, *running, queues=queues, now=1000.0)

    got = decide(snap, PendingIndex(pending), policy, max_starts=max_starts)

    assert_same(got, plain_walk(snap, pending, policy, max_starts))


def test_a_committed_preemption_revives_the_classes_set_aside() -> None:
    """a1 repeats a0's remembered verdict and its class is set aside; b0's preemption then
    frees devices, so a2, after b0 in order, is judged again (fewer devices free now)."""
    the_cluster = Cluster([node("n0", "H100")])
    low = job("low", devices=4)
    fixed = job("fixed", devices=2, preemptible=False)
    snap = snapshot(the_cluster, running_on(low, (0, 1, 2, 3)), running_on(fixed, (4, 5)),
                    now=100.0)
    pending = [job("a0", devices=8, priority=1, submit=0.0),
               job("a1", devices=8, priority=1, submit=1.0),
               job("b0", devices=6, priority=1, submit=2.0),
               job("a2", devices=8, priority=1, submit=3.0)]

    got = decide(snap, PendingIndex(pending), "priority")

    assert_same(got, plain_walk(snap, pending, POLICIES.get("priority"), 3000))
    assert [start.job.name for start in got.starts] == ["b0"]
    reasons = got.reasons()
    assert reasons["a1"].reason == reasons["a0"].reason
    assert reasons["a2"].reason != reasons["a1"].reason


def test_a_blocked_head_of_line_revives_the_classes_set_aside() -> None:
    """h1 repeats h0's `health` verdict; c0 then blocks the line, so h3, after c0 in order,
    waits behind it, while h1, before c0, keeps `health`."""
    the_cluster = Cluster([node("n0", "H100"), node("n1", "H100", health=NodeHealth.CORDONED)])
    busy = job("busy", devices=4)
    snap = snapshot(the_cluster, running_on(busy, (0, 1, 2, 3)), now=100.0)
    pending = [job("h0", replicas=2, devices=8, submit=0.0),
               job("h1", replicas=2, devices=8, submit=1.0),
               job("c0", devices=8, submit=2.0),
               job("h3", replicas=2, devices=8, submit=3.0)]

    got = decide(snap, PendingIndex(pending), "fifo")

    assert_same(got, plain_walk(snap, pending, POLICIES.get("fifo"), 3000))
    codes = {name: wait.code for name, wait in got.reasons().items()}
    assert codes == {"h0": WaitCode.HEALTH, "h1": WaitCode.HEALTH, "c0": WaitCode.CAPACITY,
                     "h3": WaitCode.HEAD_OF_LINE}


def running_on(the_job: Job, devices: tuple[int, ...], where: str = "n0") -> Allocation:
    return Allocation(the_job, (ReplicaPlacement(0, where, devices),), start_time=0.0)


def test_a_long_list_is_walked_as_its_index() -> None:
    """A list of CLASS_WALK_FROM jobs or more is filed in classes: the same decisions as the
    index of the same jobs and as the per-job walk."""
    the_cluster = Cluster([node(f"n{i}", "H100", rack=f"r{i // 4}") for i in range(16)])
    snap = snapshot(the_cluster, now=10.0)
    pending = [job(f"j{i:05d}", devices=(1, 2, 8, 16)[i % 4] if i % 4 < 3 else 8,
                   replicas=2 if i % 4 == 3 else 1, submit=float(i), queue="default")
               for i in range(CLASS_WALK_FROM)]
    got = decide(snap, pending, "fifo-besteffort", max_starts=10)
    assert_same(got, decide(snap, PendingIndex(pending), "fifo-besteffort", max_starts=10))
    assert_same(got, plain_walk(snap, pending, POLICIES.get("fifo-besteffort"), 10))
    assert len(got.starts) == 10 and got.deferred > 0
