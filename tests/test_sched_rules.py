"""Placement constraints that must hold on every path: the vendor's allocation rule of the type
actually chosen, `within` and link domains for the whole job, and degraded nodes last."""

from __future__ import annotations

from dataclasses import replace

from sched_helpers import cluster, devices_of, job, node, running, snapshot

from suan.catalog import default_catalog
from suan.cluster.model import Node, NodeHealth
from suan.jobs.model import Job, ReplicaGroup, TopologyConstraint
from suan.sched import WaitCode, decide, get_policy
from suan.sched.phases import QUEUE, REBALANCE

H100, C910, B910, P800, GB200 = "H100-SXM-80GB", "Ascend-910C", "Ascend-910B", "Kunlunxin-P800", \
    "GB200-NVL72"


def two_group_job(name: str, first: ReplicaGroup, second: ReplicaGroup, *,
                  within: str | None = None, in_domain: bool = False) -> Job:
    return Job(name, (first, second), topology=TopologyConstraint(in_domain, within))


def cpu_node(name: str, rack: str) -> Node:
    return Node(name, None, 0, (), cpu_milli=64_000, memory_mib=1 << 18, rack=rack)


def nodes_of(decisions, name: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {replica.node for replica in decisions.started()[name].replicas}


# ---------------------------------------------------------------------- allocation rules
def test_any_type_job_does_not_take_an_odd_count_of_a_module_type():
    decisions = decide(snapshot(cluster(node("c0", "910C"))), [job("three", devices=3)],
                       "fifo")
    assert decisions.starts == []
    [wait] = decisions.pending
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "3 Ascend-910C devices per replica is not an allowed allocation" in wait.reason


def test_a_type_list_skips_a_type_whose_rule_refuses_the_count():
    nodes = cluster(node("c0", "910C"), node("h0", rack="r1"))
    decisions = decide(snapshot(nodes), [job("three", devices=3, types=("910C", "H100"))],
                       "fifo")
    assert decisions.started()["three"].accelerators == (H100,)
    assert nodes_of(decisions, "three") == {"h0"}


def test_counts_outside_the_kunlunxin_list_go_elsewhere_or_wait():
    nodes = cluster(node("x0", "P800"), node("h0", rack="r1"))
    jobs = [job("six", devices=6, types=("P800", "H100")), job("three", devices=3, submit=1)]
    decisions = decide(snapshot(nodes), jobs, "fifo-besteffort")
    assert nodes_of(decisions, "six") == {"h0"}
    assert "three" not in decisions.started()
    assert "3 Kunlunxin-P800 devices per replica is not an allowed allocation" in \
        decisions.reasons()["three"].reason


def test_a_faster_type_whose_rule_refuses_the_count_is_no_move_target():
    migrate = replace(get_policy("fifo-besteffort"), name="fifo-migrate", phases=(QUEUE, REBALANCE))
    three = replace(job("three", devices=3), type_speeds=((H100, 1.0), (C910, 3.0)))
    nodes = cluster(node("h0"), node("c0", "910C", rack="r1"))
    alloc = running(three, ("h0", (0, 1, 2)))
    decisions = decide(snapshot(nodes, alloc), [], migrate)
    assert decisions.starts == [] and decisions.preemptions == []


# ---------------------------------------------------------------------- within
def test_within_supernode_holds_for_a_gang_that_fits_on_one_node():
    nodes = cluster(node("plain", rack="r0"),
                    *(node(f"g{i}", "GB200-NVL72", rack="r1", supernode="sn0")
                      for i in range(2)))
    gang = job("nvl", replicas=2, devices=2, types=("H100", "GB200-NVL72"), within="supernode")
    decisions = decide(snapshot(nodes), [gang], "fifo")
    assert decisions.started()["nvl"].accelerators == (GB200,)
    assert all(nodes.node(name).supernode == "sn0" for name in nodes_of(decisions, "nvl"))


def test_within_rack_holds_for_the_whole_job_across_its_groups():
    nodes = cluster(node("a0", rack="ra"), node("a1", rack="ra"),
                    node("b0", rack="rb"), node("b1", rack="rb"))
    busy = running(job("old", devices=8), ("a1", tuple(range(8))))
    group = ReplicaGroup(replicas=1, accelerators=8)
    two = two_group_job("two", replace(group, name="one"), replace(group, name="other"),
                        within="rack")
    decisions = decide(snapshot(nodes, busy), [two], "fifo")
    assert {nodes.node(name).rack for name in nodes_of(decisions, "two")} == {"rb"}


def test_within_rack_holds_for_a_group_that_needs_no_accelerator():
    nodes = cluster(cpu_node("cpu0", "rc"), node("a0", rack="ra"))
    two = two_group_job("two", ReplicaGroup(name="gpu", accelerators=8),
                        ReplicaGroup(name="cpu", accelerators=0, cpu_milli=4000),
                        within="rack")
    decisions = decide(snapshot(nodes), [two], "fifo")
    assert nodes_of(decisions, "two") == {"a0"}


def test_a_job_whose_groups_fit_in_no_single_rack_waits_for_the_constraint():
    nodes = cluster(node("a0", rack="ra"), node("b0", rack="rb"))
    group = ReplicaGroup(replicas=1, accelerators=8)
    two = two_group_job("two", replace(group, name="one"), replace(group, name="other"),
                        within="rack")
    decisions = decide(snapshot(nodes), [two], "fifo")
    assert decisions.starts == []
    assert decisions.reasons()["two"].code == WaitCode.CONSTRAINT


def test_every_group_of_a_job_keeps_replicas_inside_one_link_domain():
    nodes = cluster(node("v0", "V100"))
    busy = running(job("old", devices=2, types=("V100",)), ("v0", (0, 1)))
    two = two_group_job("two", ReplicaGroup(name="one", accelerators=2),
                        ReplicaGroup(name="other", accelerators=4), in_domain=True)
    decisions = decide(snapshot(nodes, busy), [two], "fifo")
    domains = default_catalog().get("V100").domain_layout()
    for _, devices in devices_of(decisions, "two"):
        assert any(set(devices) <= set(domain) for domain in domains)


# ---------------------------------------------------------------------- degraded last
def test_spread_inside_a_rack_prefers_a_rack_of_ready_nodes():
    nodes = cluster(node("a0", rack="ra"), node("a1", rack="ra", health=NodeHealth.DEGRADED),
                    node("b0", rack="rb"), node("b1", rack="rb"))
    gang = job("wide", replicas=2, devices=8, within="rack", placement="spread")
    decisions = decide(snapshot(nodes), [gang], "fifo")
    assert nodes_of(decisions, "wide") == {"b0", "b1"}


def test_spread_shares_a_ready_node_before_taking_a_degraded_one():
    nodes = cluster(node("a0", rack="ra"), node("b0", rack="rb", health=NodeHealth.DEGRADED))
    gang = job("pair", replicas=2, devices=4, placement="spread")
    decisions = decide(snapshot(nodes), [gang], "fifo-spread")
    assert nodes_of(decisions, "pair") == {"a0"}


def test_a_ready_node_of_a_later_type_beats_a_degraded_node_of_the_first():
    nodes = cluster(node("h0", health=NodeHealth.DEGRADED), node("s0", "910B", rack="r1"))
    decisions = decide(snapshot(nodes), [job("pref", devices=8, types=("H100", "910B"))],
                       "fifo")
    assert nodes_of(decisions, "pref") == {"s0"}
    assert decisions.started()["pref"].accelerators == (B910,)


def test_compact_gang_leaves_a_degraded_node_for_a_ready_one_in_another_rack():
    nodes = cluster(node("a0", rack="ra"), node("a1", rack="ra", health=NodeHealth.DEGRADED),
                    node("b0", rack="rb"))
    decisions = decide(snapshot(nodes), [job("pair", replicas=2, devices=8)], "fifo")
    assert nodes_of(decisions, "pair") == {"a0", "b0"}


def test_cpu_replicas_go_to_ready_nodes_before_degraded_ones():
    sick = replace(cpu_node("sick", "r0"), cpu_milli=128_000, health=NodeHealth.DEGRADED)
    nodes = cluster(sick, cpu_node("well", "r0"))
    cpu_job = Job("cpu", (ReplicaGroup(accelerators=0, cpu_milli=4000),))
    decisions = decide(snapshot(nodes), [cpu_job], "fifo")
    assert nodes_of(decisions, "cpu") == {"well"}


def test_a_reservation_holds_ready_nodes_before_degraded_ones():
    nodes = cluster(node("a0", rack="ra"), node("a1", rack="ra", health=NodeHealth.DEGRADED),
                    node("b0", rack="rb"))
    busy = [running(job(f"old{i}", devices=8, estimate=600.0), (name, tuple(range(8))))
            for i, name in enumerate(("a0", "b0"))]
    blocked = job("big", replicas=2, devices=8, submit=1)
    decisions = decide(snapshot(nodes, *busy), [blocked], "backfill")
    assert decisions.reservation is not None
    assert set(decisions.reservation["nodes"]) == {"a0", "b0"}


def test_preemption_frees_a_ready_node_before_landing_on_a_degraded_one():
    nodes = cluster(node("a0", rack="ra"), node("a1", rack="ra", health=NodeHealth.DEGRADED))
    cheap = running(job("cheap", devices=8), ("a1", tuple(range(8))), checkpoint=990.0)
    dear = running(job("dear", devices=8), ("a0", tuple(range(8))), checkpoint=0.0)
    urgent = job("urgent", devices=8, priority=5)
    decisions = decide(snapshot(nodes, cheap, dear, now=1000.0), [urgent], "priority")
    assert nodes_of(decisions, "urgent") == {"a0"}
    assert [p.job for p in decisions.preemptions] == ["dear"]
