"""Placement rules as properties over random clusters, running work and jobs, for every request
form (one type, a list, any type), every policy and every path a start takes (placement,
preemption, backfill, moves between types):

(a) every replica's device count is allowed by the allocation rule of the type of the node it
    landed on, and takes whole modules and, where the rule says so, one link domain;
(b) a job with `within: S` has every replica of every group under one label of S; a job with
    `replica_in_domain` has every replica inside one link domain of its node;
(c) a replica goes to a degraded node only when no ready node could hold it: for a single
    replica, no ready node of a type the job accepts (whose rule allows the count) is free
    enough; for a gang of whole-node replicas, too few such ready nodes are idle.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_helpers import node, snapshot

from suan.catalog import default_catalog
from suan.cluster.model import Cluster, Node, NodeHealth
from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job, ReplicaGroup, TopologyConstraint
from suan.sched import Decisions, decide, get_policy
from suan.sched.phases import QUEUE, REBALANCE

TYPES = ("H100", "910C", "P800", "V100", "GB200-NVL72")
TYPE_LISTS: tuple[tuple[str, ...], ...] = (
    (), ("910C",), ("P800",), ("V100",), ("910C", "H100"), ("P800", "910C"),
    ("GB200-NVL72", "H100"), ("P800", "V100", "910C"),
)
POLICIES = ("default", "fifo", "priority", "backfill", "fifo-besteffort", "fifo-spread",
            "fifo-bestfit", "fifo-fgd", "fifo-random")
MIGRATE = replace(get_policy("fifo-besteffort"), name="fifo-migrate", phases=(QUEUE, REBALANCE))
RULES = settings(max_examples=200, derandomize=True, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])
CATALOG = default_catalog()


@st.composite
def clusters(draw: st.DrawFn, health: tuple[NodeHealth, ...] = tuple(NodeHealth),
             types: tuple[str, ...] = TYPES) -> Cluster:
    nodes = []
    for index in range(draw(st.integers(1, 6))):
        accel = draw(st.sampled_from(types))
        supernode = draw(st.sampled_from(["", "sn0", "sn1"]))
        nodes.append(node(f"n{index}", accel, rack=f"r{draw(st.integers(0, 2))}",
                          block=f"b{draw(st.integers(0, 1))}", supernode=supernode,
                          health=draw(st.sampled_from(health))))
    if draw(st.booleans()):
        nodes.append(Node(f"cpu{len(nodes)}", None, 0, (), cpu_milli=32_000,
                          memory_mib=1 << 16, rack=f"r{draw(st.integers(0, 2))}",
                          block="b0", health=draw(st.sampled_from(health))))
    return Cluster(nodes)


@st.composite
def groups(draw: st.DrawFn, name: str, cpu_only: bool = False) -> ReplicaGroup:
    if cpu_only:
        return ReplicaGroup(name=name, replicas=draw(st.integers(1, 2)), accelerators=0,
                            cpu_milli=draw(st.sampled_from([1000, 8000])))
    devices = draw(st.integers(1, 8))
    share = draw(st.sampled_from([1000, 1000, 500])) if devices == 1 else 1000
    types = tuple(CATALOG.canonical(t) for t in draw(st.sampled_from(TYPE_LISTS)))
    return ReplicaGroup(name=name, replicas=draw(st.integers(1, 3)), accelerators=devices,
                        accelerator_milli=share, accelerator_types=types,
                        min_replicas=draw(st.sampled_from([None, None, 1])))


@st.composite
def jobs(draw: st.DrawFn, prefix: str, count: int) -> list[Job]:
    made = []
    for index in range(count):
        parts = [draw(groups("main"))]
        second = draw(st.sampled_from([None, None, "device", "cpu"]))
        if second is not None:
            parts.append(draw(groups("side", cpu_only=second == "cpu")))
        topology = TopologyConstraint(
            replica_in_domain=draw(st.booleans()),
            within=draw(st.sampled_from([None, None, "rack", "supernode", "block"])),
            placement=draw(st.sampled_from(["pack", "pack", "spread"])),
        )
        speeds = draw(st.sampled_from([(), ((CATALOG.canonical("910C"), 2.0),
                                            (CATALOG.canonical("H100"), 1.0))]))
        made.append(Job(
            f"{prefix}{index}", tuple(parts), priority=draw(st.integers(0, 2)),
            submit_time=float(index), runtime_estimate_s=draw(st.sampled_from([None, 600.0])),
            topology=topology, type_speeds=speeds,
        ))
    return made


def cycle(data: st.DataObject, the_cluster: Cluster) -> tuple[Decisions, Cluster]:
    """A first cycle makes running work; the second, under a drawn policy, is checked."""
    earlier = data.draw(jobs("old", data.draw(st.integers(0, 5))))
    first = decide(snapshot(the_cluster), earlier, "fifo-besteffort")
    running = [Allocation(s.job, s.replicas, 0.0) for s in first.starts]
    pending = data.draw(jobs("new", data.draw(st.integers(1, 6))))
    policy = data.draw(st.sampled_from([*POLICIES, MIGRATE]))
    return decide(snapshot(the_cluster, *running, now=1000.0), pending, policy), the_cluster


# ---------------------------------------------------------------------- (a) allocation rules
@RULES
@given(data=st.data())
def test_every_replica_count_is_allowed_by_the_rule_of_the_type_it_landed_on(
        data: st.DataObject) -> None:
    decisions, the_cluster = cycle(data, data.draw(clusters()))
    for start in decisions.starts:
        for replica in start.replicas:
            group = start.job.groups[replica.group]
            if not group.accelerators or replica.milli < 1000:
                continue
            placed_on = the_cluster.node(replica.node)
            accel = CATALOG.get(placed_on.accelerator or "")
            rule, count = accel.allocation, len(replica.devices)
            assert rule.allows(count, placed_on.devices), (start.job.name, replica)
            if rule.module_size > 1 and count > 1:
                modules = {device // rule.module_size for device in replica.devices}
                assert len(modules) * rule.module_size == count, replica
            if count <= rule.domain_local_max:
                assert _in_one_domain(placed_on, replica.devices), replica


# ---------------------------------------------------------------------- (b) within, domains
@RULES
@given(data=st.data())
def test_within_holds_for_all_groups_and_replica_in_domain_for_every_replica(
        data: st.DataObject) -> None:
    decisions, the_cluster = cycle(data, data.draw(clusters()))
    for start in decisions.starts:
        topology = start.job.topology
        if topology.within is not None:
            labels = {the_cluster.node(r.node).tier(topology.within) for r in start.replicas}
            assert len(labels) == 1 and "" not in labels, (start.job.name, labels)
        if topology.replica_in_domain:
            for replica in start.replicas:
                if replica.devices:
                    assert _in_one_domain(the_cluster.node(replica.node), replica.devices)


# ---------------------------------------------------------------------- (c) degraded last
@RULES
@given(data=st.data())
def test_a_single_replica_lands_on_a_degraded_node_only_when_no_ready_node_holds_it(
        data: st.DataObject) -> None:
    the_cluster = data.draw(clusters((NodeHealth.READY, NodeHealth.DEGRADED)))
    earlier = data.draw(jobs("old", data.draw(st.integers(0, 4))))
    first = decide(snapshot(the_cluster), earlier, "fifo-besteffort")
    running = [Allocation(s.job, s.replicas, 0.0) for s in first.starts]
    the_job = data.draw(jobs("new", 1))[0]
    group = replace(the_job.groups[0], replicas=1, min_replicas=None)
    the_job = replace(the_job, groups=(group,))
    policy = data.draw(st.sampled_from(POLICIES))
    decisions = decide(snapshot(the_cluster, *running, now=1000.0), [the_job], policy)

    busy = {r.node for alloc in running for r in alloc.replicas}
    holders = [n for n in the_cluster if n.name not in busy and _could_hold(n, the_job)]
    if holders:
        start = decisions.started()[the_job.name]
        [replica] = start.replicas
        assert the_cluster.node(replica.node).health == NodeHealth.READY, (holders, replica)


@RULES
@given(data=st.data())
def test_a_gang_of_whole_nodes_uses_no_degraded_node_when_enough_ready_ones_are_idle(
        data: st.DataObject) -> None:
    accel = data.draw(st.sampled_from(["H100", "V100", "GB200-NVL72"]))
    the_cluster = data.draw(clusters((NodeHealth.READY, NodeHealth.DEGRADED),
                                     (accel, accel, "910C")))
    earlier = data.draw(jobs("old", data.draw(st.integers(0, 4))))
    first = decide(snapshot(the_cluster), earlier, "fifo-besteffort")
    running = [Allocation(s.job, s.replicas, 0.0) for s in first.starts]
    size = CATALOG.get(accel).devices_per_node
    types = data.draw(st.sampled_from([(accel,), (), ("910C", accel)]))
    group = ReplicaGroup(replicas=data.draw(st.integers(2, 3)), accelerators=size,
                         accelerator_types=tuple(CATALOG.canonical(t) for t in types))
    within = data.draw(st.sampled_from([None, "rack", "block"]))
    placement = data.draw(st.sampled_from(["pack", "spread"]))
    the_job = Job("gang", (group,), topology=TopologyConstraint(within=within,
                                                                placement=placement))
    policy = data.draw(st.sampled_from(POLICIES))
    decisions = decide(snapshot(the_cluster, *running, now=1000.0), [the_job], policy)

    busy = {r.node for alloc in running for r in alloc.replicas}
    idle: dict[tuple[str | None, str], int] = {}
    for candidate in the_cluster:
        if candidate.name in busy or not _could_hold(candidate, the_job):
            continue
        key = (candidate.accelerator, candidate.tier(within) if within else "")
        if within and not key[1]:
            continue
        idle[key] = idle.get(key, 0) + 1
    if any(count >= group.replicas for count in idle.values()):
        start = decisions.started()["gang"]
        used = {the_cluster.node(r.node).health for r in start.replicas}
        assert used == {NodeHealth.READY}, start.why


# ---------------------------------------------------------------------- helpers
def _in_one_domain(placed_on: Node, devices: tuple[int, ...]) -> bool:
    return any(set(devices) <= set(domain) for domain in placed_on.domains)


def _could_hold(candidate: Node, the_job: Job) -> bool:
    """An idle ready node that holds one replica of the job's single group whole: a type the
    group accepts, a count its rule allows, one link domain when asked, a `within` label."""
    group = the_job.groups[0]
    if candidate.health != NodeHealth.READY or candidate.accelerator is None:
        return False
    if group.accelerator_types and candidate.accelerator not in group.accelerator_types:
        return False
    rule = CATALOG.get(candidate.accelerator).allocation
    count = group.accelerators
    if group.accelerator_milli == 1000 and not rule.allows(count, candidate.devices):
        return False
    if the_job.topology.replica_in_domain and count > max(len(d) for d in candidate.domains):
        return False
    within = the_job.topology.within
    return not (within and not candidate.tier(within))
