"""Invariants of one scheduling cycle, over random clusters, queues, running work and jobs:
no device booked twice, gangs whole or absent, nothing on a node that is not ready, quota never
exceeded beyond what borrowing allows, every job decided exactly once."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_helpers import job, node, snapshot

from suan.cluster.model import Cluster, NodeHealth
from suan.cluster.snapshot import Allocation
from suan.jobs.queue import QueueSpec
from suan.sched import POLICIES, decide
from suan.sched.quota import QuotaBook

TYPES = ("H100", "910B", "P800", "910C")
QUEUES = ("qa", "qb", "qc")


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    count = draw(st.integers(1, 6))
    nodes = []
    for index in range(count):
        accel = draw(st.sampled_from(TYPES))
        health = draw(st.sampled_from(list(NodeHealth)))
        nodes.append(node(f"n{index}", accel, rack=f"r{index // 2}", block=f"b{index // 4}",
                          health=health))
    return Cluster(nodes)


@st.composite
def queue_trees(draw: st.DrawFn) -> tuple[QueueSpec, ...]:
    specs = [QueueSpec("org")]
    for name in QUEUES:
        guarantee = draw(st.sampled_from([0, 4, 8, 16]))
        borrow = draw(st.sampled_from([None, 0, 4, 16]))
        lend = draw(st.sampled_from([None, 0, 8]))
        specs.append(QueueSpec(
            name, parent="org", guaranteed={"accelerators": guarantee},
            borrow_limit=None if borrow is None else {"accelerators": borrow},
            lend_limit=None if lend is None else {"accelerators": lend},
        ))
    return tuple(specs)


@st.composite
def jobs(draw: st.DrawFn, prefix: str, count: int):  # type: ignore[no-untyped-def]
    made = []
    for index in range(count):
        devices = draw(st.sampled_from([1, 2, 4, 8]))
        share = draw(st.sampled_from([1.0, 1.0, 0.5, 0.25])) if devices == 1 else 1.0
        types = draw(st.sampled_from([(), ("H100",), ("910B", "H100"), ("P800",), ("910C",)]))
        made.append(job(
            f"{prefix}{index}", replicas=draw(st.integers(1, 3)), devices=devices,
            types=types, share=share, queue=draw(st.sampled_from(QUEUES)),
            priority=draw(st.integers(0, 2)), submit=float(index),
            estimate=draw(st.sampled_from([None, 600.0, 7200.0])),
            within=draw(st.sampled_from([None, None, "rack"])),
            preemptible=draw(st.booleans()),
        ))
    return made


def _usage(allocs: list[Allocation], the_cluster: Cluster) -> dict[tuple[str, int], int]:
    booked: dict[tuple[str, int], int] = defaultdict(int)
    for alloc in allocs:
        for replica in alloc.replicas:
            for device in replica.devices:
                booked[(replica.node, device)] += replica.milli
    return booked


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cycle_invariants(data: st.DataObject) -> None:
    the_cluster = data.draw(clusters())
    queues = data.draw(queue_trees())
    policy = data.draw(st.sampled_from(["default", "fifo", "priority", "backfill", "fairshare",
                                        "fifo-fgd", "fifo-spread", "fifo-random",
                                        "fifo-lookahead"]))
    # A first cycle produces realistic running work; the second is the one checked.
    earlier = data.draw(jobs("old", data.draw(st.integers(0, 6))))
    first = decide(snapshot(the_cluster, queues=queues), earlier, "fifo-besteffort")
    previous = [Allocation(s.job, s.replicas, 0.0) for s in first.starts]
    pending = data.draw(jobs("new", data.draw(st.integers(1, 8))))
    before = snapshot(the_cluster, *previous, queues=queues, now=1000.0)
    decisions = decide(before, pending, policy)

    preempted = {p.job for p in decisions.preemptions}
    assert preempted <= {a.job.name for a in previous}
    assert all(a.job.preemptible for a in previous if a.job.name in preempted)
    after = [a for a in previous if a.job.name not in preempted]
    after += [Allocation(s.job, s.replicas, 1000.0) for s in decisions.starts]

    # No device booked beyond its whole.
    assert all(milli <= 1000 for milli in _usage(after, the_cluster).values())
    for start in decisions.starts:
        group = start.job.groups[0]
        # Gangs whole (or the elastic floor), each replica with its full device count.
        assert len(start.replicas) in (group.replicas, group.floor_replicas)
        for replica in start.replicas:
            placed_on = the_cluster.node(replica.node)
            assert placed_on.health.schedulable
            assert len(set(replica.devices)) == len(replica.devices) == group.accelerators
            assert all(0 <= d < placed_on.devices for d in replica.devices)
            if group.accelerator_types:
                assert placed_on.accelerator in group.accelerator_types
            if start.job.topology.within == "rack":
                assert len({the_cluster.node(r.node).rack for r in start.replicas}) == 1

    # Every pending job decided exactly once, with a reason.
    started = [s.job.name for s in decisions.starts]
    waiting = [w.job for w in decisions.pending]
    assert sorted(started + waiting) == sorted(j.name for j in pending)
    assert all(w.reason for w in decisions.pending)

    # Quota: no queue above its guarantee plus borrow limit (when quotas are enforced).
    if POLICIES.get(policy).quotas:
        book = QuotaBook(queues, the_cluster.capacity())
        for alloc in after:
            book.add(alloc.job.queue, _alloc_usage(before, alloc))
        for name in QUEUES:
            for resource, used in book.usage[name].items():
                assert used <= book.ceiling(name, resource) + 1e-6


def _alloc_usage(the_snapshot, alloc):  # type: ignore[no-untyped-def]
    from suan.catalog import default_catalog
    from suan.sched.cycle import allocation_usage
    from suan.sched.ledger import Ledger

    return allocation_usage(alloc, Ledger(the_snapshot, default_catalog()))

