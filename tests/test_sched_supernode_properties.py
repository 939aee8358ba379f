"""Replicas that span nodes, as properties over random supernode clusters, running work and
jobs, under every policy:

(a) every replica's parts add up to its group's count; a replica of more than one part has
    as many parts as the catalog's split says, each on a distinct node, all of one non-empty
    supernode of a type whose link domain spans nodes, listed in the domain's node order;
(b) no part breaks its type's allocation rule (allowed count, whole aligned modules);
(c) the gang is all or nothing: a started group has its full or its floor replica count, and
    no device is held twice, by running work or by two starts.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sched_helpers import node, snapshot

from suan.catalog import default_catalog
from suan.cluster.model import Cluster, NodeHealth
from suan.cluster.snapshot import Allocation, replica_parts
from suan.jobs.model import Job, ReplicaGroup, TopologyConstraint
from suan.sched import Decisions, decide

CATALOG = default_catalog()
GB200, ASCEND, H100 = (CATALOG.canonical(n) for n in ("GB200", "910C", "H100"))
TYPE_LISTS: tuple[tuple[str, ...], ...] = ((GB200,), (ASCEND,), (), (GB200, H100), (H100,))
COUNTS = (1, 2, 4, 6, 8, 8, 12, 16, 18, 24, 32)
POLICIES = ("default", "fifo", "priority", "backfill", "fifo-besteffort", "fifo-spread",
            "fifo-bestfit", "fifo-fgd", "fifo-random")
RULES = settings(max_examples=150, derandomize=True, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])
HEALTH = (*[NodeHealth.READY] * 5, NodeHealth.DEGRADED, NodeHealth.DOWN)


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    """GB200 and Ascend 910C supernodes of a few nodes, spread over racks, plus some nodes
    with no supernode label and some H100 nodes."""
    nodes = []
    for domain in range(draw(st.integers(1, 3))):
        accel = draw(st.sampled_from([GB200, GB200, ASCEND]))
        for _ in range(draw(st.integers(1, 6))):
            nodes.append(node(f"n{len(nodes)}", accel, rack=f"r{draw(st.integers(0, 2))}",
                              supernode=f"sn{domain}", health=draw(st.sampled_from(HEALTH))))
    for _ in range(draw(st.integers(0, 2))):
        accel = draw(st.sampled_from([GB200, H100]))
        nodes.append(node(f"n{len(nodes)}", accel, rack=f"r{draw(st.integers(0, 2))}",
                          health=draw(st.sampled_from(HEALTH))))
    return Cluster(nodes)


@st.composite
def jobs(draw: st.DrawFn, prefix: str, count: int) -> list[Job]:
    made = []
    for index in range(count):
        group = ReplicaGroup(
            replicas=draw(st.integers(1, 3)), accelerators=draw(st.sampled_from(COUNTS)),
            accelerator_types=draw(st.sampled_from(TYPE_LISTS)),
            cpu_milli=draw(st.sampled_from([0, 8000, 96_000])),
            min_replicas=draw(st.sampled_from([None, None, 1])))
        topology = TopologyConstraint(
            replica_in_domain=draw(st.booleans()),
            within=draw(st.sampled_from([None, None, "supernode", "rack"])))
        made.append(Job(f"{prefix}{index}", (group,), priority=draw(st.integers(0, 2)),
                        submit_time=float(index),
                        runtime_estimate_s=draw(st.sampled_from([None, 600.0])),
                        topology=topology))
    return made


def cycle(data: st.DataObject) -> tuple[Decisions, Cluster, list[Allocation]]:
    """A first cycle makes running work; the second, under a drawn policy, is checked."""
    the_cluster = data.draw(clusters())
    first = decide(snapshot(the_cluster), data.draw(jobs("old", data.draw(st.integers(0, 4)))),
                   "fifo-besteffort")
    running = [Allocation(s.job, s.replicas, 0.0) for s in first.starts]
    still = [a for a in running if all(the_cluster.node(r.node).health.schedulable
                                       for r in a.replicas)]
    pending = data.draw(jobs("new", data.draw(st.integers(1, 5))))
    policy = data.draw(st.sampled_from(POLICIES))
    decisions = decide(snapshot(the_cluster, *still, now=1000.0), pending, policy)
    return decisions, the_cluster, still


@RULES
@given(data=st.data())
def test_spanning_replicas_sit_in_one_supernode_as_the_catalogs_parts(
        data: st.DataObject) -> None:
    decisions, the_cluster, _ = cycle(data)
    order = the_cluster.index
    for start in decisions.starts:
        for parts in replica_parts(start.job, start.replicas):
            group = start.job.groups[parts[0].group]
            assert sum(len(p.devices) for p in parts) == group.accelerators, parts
            nodes = [the_cluster.node(p.node) for p in parts]
            accel = CATALOG.get(nodes[0].accelerator or "")
            assert {n.accelerator for n in nodes} == {accel.name}
            if len(parts) == 1:
                assert group.accelerators <= nodes[0].devices
                continue
            event("a replica spans nodes")
            assert accel.supernode_devices, (start.job.name, accel.name)
            assert len(parts) == accel.span_parts(group.accelerators)
            assert len({n.name for n in nodes}) == len(parts), "one part per node"
            labels = {n.supernode for n in nodes}
            assert len(labels) == 1 and "" not in labels, labels
            assert [order[n.name] for n in nodes] == sorted(order[n.name] for n in nodes)


@RULES
@given(data=st.data())
def test_no_part_breaks_its_types_allocation_rule(data: st.DataObject) -> None:
    decisions, the_cluster, _ = cycle(data)
    for start in decisions.starts:
        for replica in start.replicas:
            placed_on = the_cluster.node(replica.node)
            rule, count = CATALOG.get(placed_on.accelerator or "").allocation, len(replica.devices)
            assert rule.allows(count, placed_on.devices), (start.job.name, replica)
            if rule.module_size > 1 and count > 1:
                modules = {device // rule.module_size for device in replica.devices}
                assert len(modules) * rule.module_size == count, replica


@RULES
@given(data=st.data())
def test_gangs_are_whole_and_no_device_is_held_twice(data: st.DataObject) -> None:
    decisions, _, running = cycle(data)
    stopped = {p.job for p in decisions.preemptions}
    held: set[tuple[str, int]] = set()
    kept = [(a.job, a.replicas) for a in running if a.job.name not in stopped]
    for the_job, replicas in [*kept, *((s.job, s.replicas) for s in decisions.starts)]:
        for replica in replicas:
            for device in replica.devices:
                assert (replica.node, device) not in held, (the_job.name, replica)
                held.add((replica.node, device))
    for start in decisions.starts:
        group = start.job.groups[0]
        count = len(replica_parts(start.job, start.replicas))
        assert count in (group.replicas, group.floor_replicas), (start.job.name, count)
