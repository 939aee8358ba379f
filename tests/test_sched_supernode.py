"""Supernodes: a replica larger than one node, placed as per-node parts inside one link domain
that spans nodes (a GB200 NVL72 rack of 18 trays x 4 GPUs, an Ascend CloudMatrix384)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sched_helpers import cluster, job, node, running, snapshot

from suan.catalog import default_catalog
from suan.cluster.snapshot import ReplicaPlacement, replica_parts
from suan.exec import JobLaunch
from suan.exec.environment import rank_environments
from suan.exec.processes import processes
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.queue import QueueSpec
from suan.jobs.spec import parse_job
from suan.sched import WaitCode, decide
from suan.sched.cycle import WorkingState

NVL = ("GB200-NVL72",)


def nvl72(label: str = "sn0", trays: int = 18, prefix: str = "t", rack: str = "r0") -> list:
    """One NVL72 rack: `trays` nodes of 4 GB200 GPUs sharing supernode `label`."""
    return [node(f"{prefix}{i:02d}", "GB200-NVL72", rack=rack, supernode=label)
            for i in range(trays)]


def parts_of(decisions, name: str) -> list[list[ReplicaPlacement]]:  # type: ignore[no-untyped-def]
    start = decisions.started()[name]
    return [list(parts) for parts in replica_parts(start.job, start.replicas)]


# --- the catalog's split rule -------------------------------------------------------------------


def test_catalog_splits_a_spanning_replica_into_the_fewest_equal_allowed_parts():
    catalog = default_catalog()
    gb200, ascend, h100 = (catalog.get(n) for n in ("GB200", "Ascend-910C", "H100"))
    assert gb200.span_parts(4) == 1  # fits one tray
    assert gb200.span_parts(8) == 2 and gb200.span_parts(72) == 18
    assert gb200.span_parts(6) == 2  # 2 parts of 3
    assert gb200.span_parts(76) == 0  # more than the 72-GPU domain
    assert ascend.span_parts(24) == 2  # 2 parts of 12 dies (whole die pairs)
    assert ascend.span_parts(18) == 3  # 9 would split a die pair: 3 parts of 6
    assert ascend.span_parts(17) == 17  # one die per node is allowed, a pair split is not
    assert gb200.span_parts(71) == 0  # no split into at most 18 equal parts of at most 4
    assert h100.span_parts(16) == 0  # an H100 NVLink domain is one node


# --- placement -----------------------------------------------------------------------------------


def test_nvl72_replicas_of_8_each_span_two_trays_of_the_supernode():
    nodes = cluster(*nvl72())
    decisions = decide(snapshot(nodes), [job("big", replicas=4, devices=8, types=NVL)], "fifo")
    replicas = parts_of(decisions, "big")
    assert len(replicas) == 4
    trays = [r.node for parts in replicas for r in parts]
    assert len(set(trays)) == 8, "each part on its own tray"
    for parts in replicas:
        assert [len(r.devices) for r in parts] == [4, 4]
        assert [r.devices for r in parts] == [(0, 1, 2, 3)] * 2
        assert trays.index(parts[0].node) < trays.index(parts[1].node)
    assert trays == sorted(trays), "parts in domain order"
    why = decisions.started()["big"].why
    assert "replica 1 spans t00, t01 of supernode sn0" in why
    assert "2 parts of 4 GB200-NVL72" in why


def test_a_replica_of_8_without_a_spanning_domain_is_refused_with_a_reason():
    # GB200 trays that carry no supernode label: the catalog allows spanning, the cluster has
    # no domain to span.
    unlabelled = cluster(*(node(f"t{i}", "GB200-NVL72") for i in range(4)))
    decisions = decide(snapshot(unlabelled), [job("big", devices=8, types=NVL)], "fifo")
    [wait] = decisions.pending
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "supernode" in wait.reason and "no GB200-NVL72 node" in wait.reason
    # Ordinary 4-GPU H100 nodes: an H100 link domain never spans nodes (the old refusal).
    small = cluster(*(node(f"h{i}", "H100", devices=4, supernode="sn0") for i in range(4)))
    decisions = decide(snapshot(small), [job("big", devices=8, types=("H100",))], "fifo")
    [wait] = decisions.pending
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "a replica needs 8 H100-SXM-80GB but H100-SXM-80GB nodes have at most 4" in wait.reason


def test_a_replica_larger_than_the_spanning_domain_is_refused():
    nodes = cluster(*nvl72())
    decisions = decide(snapshot(nodes), [job("huge", devices=76, types=NVL)], "fifo")
    [wait] = decisions.pending
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "at most 4" in wait.reason and "72" in wait.reason


def test_a_small_supernode_cannot_hold_a_replica_larger_than_itself():
    nodes = cluster(*nvl72(trays=2))
    decisions = decide(snapshot(nodes), [job("big", devices=12, types=NVL)], "fifo")
    [wait] = decisions.pending
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "supernode" in wait.reason and "8" in wait.reason


def test_a_replica_never_straddles_two_supernodes():
    # One free tray in each supernode: 8 GPUs are free, but in no one domain.
    nodes = cluster(*nvl72("sn0", trays=2, prefix="a"), *nvl72("sn1", trays=2, prefix="b"))
    busy = running(job("old", replicas=2, devices=4, types=NVL),
                   ("a00", (0, 1, 2, 3)), ("b00", (0, 1, 2, 3)))
    decisions = decide(snapshot(nodes, busy), [job("big", devices=8, types=NVL)], "fifo")
    [wait] = decisions.pending
    assert wait.code in (WaitCode.CAPACITY, WaitCode.SHAPE)
    assert "supernode" in wait.reason


def test_replicas_of_one_job_fill_supernodes_tightest_first_without_straddling():
    # sn0 has exactly one replica's room (2 free trays), sn1 is empty.
    nodes = cluster(*nvl72("sn0", trays=4, prefix="a"), *nvl72("sn1", trays=4, prefix="b"))
    busy = running(job("old", devices=8, types=NVL), ("a00", (0, 1, 2, 3)), ("a01", (0, 1, 2, 3)))
    decisions = decide(snapshot(nodes, busy), [job("two", replicas=2, devices=8, types=NVL)],
                       "fifo")
    supernodes = [{nodes.node(r.node).supernode for r in parts}
                  for parts in parts_of(decisions, "two")]
    assert supernodes == [{"sn0"}, {"sn1"}]
    # Under `within: supernode` both replicas must share one: only sn1 can hold them.
    decisions = decide(snapshot(nodes, busy),
                       [job("two", replicas=2, devices=8, types=NVL, within="supernode")],
                       "fifo")
    trays = {r.node for parts in parts_of(decisions, "two") for r in parts}
    assert {nodes.node(name).supernode for name in trays} == {"sn1"}


def test_a_spanning_group_and_an_ordinary_group_keep_the_job_within_one_rack():
    nodes = cluster(*nvl72("sn0", trays=4, prefix="a", rack="r0"),
                    *nvl72("sn1", trays=4, prefix="b", rack="r1"),
                    node("h0", "H100", rack="r1"))
    trainer = ReplicaGroup("trainer", replicas=1, accelerators=8, accelerator_types=NVL)
    reader = ReplicaGroup("reader", replicas=1, accelerators=2,
                          accelerator_types=("H100-SXM-80GB",))
    both = Job("mix", (trainer, reader), topology=job("x", within="rack").topology)
    decisions = decide(snapshot(nodes), [both], "fifo")
    start = decisions.started()["mix"]
    racks = {nodes.node(r.node).rack for r in start.replicas}
    assert racks == {"r1"}
    assert [len(r.devices) for r in start.replicas] == [4, 4, 2]


def test_spanning_parts_book_a_share_of_the_replicas_cpu_and_memory():
    group = ReplicaGroup(replicas=1, accelerators=8, accelerator_types=NVL, cpu_milli=96_000,
                         memory_mib=4096)
    big = Job("big", (group,))
    nodes = cluster(*nvl72(trays=2))
    decisions = decide(snapshot(nodes), [big], "fifo")
    start = decisions.started()["big"]
    state = WorkingState.build(snapshot(nodes, running(big, *((r.node, r.devices)
                                                              for r in start.replicas))),
                               default_catalog())
    assert state.ledger.cpu == [128_000 - 48_000] * 2
    assert state.ledger.mem == [(1 << 20) - 2048] * 2


# --- gang, quota, preemption, backfill treat the parts as one replica ----------------------------


def test_the_gang_is_all_or_nothing_over_spanning_replicas():
    # 24 GPUs free, but each 3-tray supernode holds one replica of 8: room for 2, not 3.
    nodes = cluster(*nvl72("sn0", trays=3, prefix="a"), *nvl72("sn1", trays=3, prefix="b"))
    jobs = [job("three", replicas=3, devices=8, types=NVL),
            job("two", replicas=2, devices=8, types=NVL, submit=1)]
    decisions = decide(snapshot(nodes), jobs, "fifo-besteffort")
    assert set(decisions.started()) == {"two"}, "nothing of the first gang stays booked"
    wait = decisions.reasons()["three"]
    assert wait.code == WaitCode.SHAPE
    assert "replica 3 of 3 needs 2 parts of 4 GB200-NVL72 on nodes of one supernode" in \
        wait.reason


def test_quota_counts_every_device_of_a_spanning_replica():
    nodes = cluster(*nvl72())
    queues = (QueueSpec("team", guaranteed={"accelerators": 12},
                        borrow_limit={"accelerators": 0}),)
    two = job("two", replicas=2, devices=8, types=NVL, queue="team")
    one = job("one", devices=8, types=NVL, queue="team")
    decisions = decide(snapshot(nodes, queues=queues), [two, one], "fifo-besteffort")
    assert set(decisions.started()) == {"one"}
    assert decisions.reasons()["two"].code == WaitCode.UNSCHEDULABLE  # 16 > 12 + 0, ever
    placed = decisions.started()["one"]
    second = job("again", devices=8, types=NVL, queue="team")
    decisions = decide(snapshot(nodes, running(one, *((r.node, r.devices)
                                                         for r in placed.replicas)),
                                  queues=queues), [second], "fifo-besteffort")
    assert decisions.reasons()["again"].code == WaitCode.QUOTA  # 8 used + 8 > 12


def test_preemption_frees_every_part_of_a_spanning_victim():
    nodes = cluster(*nvl72(trays=2))
    low = running(job("low", devices=8, types=NVL), ("t00", (0, 1, 2, 3)), ("t01", (0, 1, 2, 3)),
                  start=0.0)
    decisions = decide(snapshot(nodes, low, now=100.0),
                       [job("urgent", devices=8, types=NVL, priority=10)], "priority")
    assert [p.job for p in decisions.preemptions] == ["low"]
    assert {r.node for r in decisions.started()["urgent"].replicas} == {"t00", "t01"}


def test_backfill_reserves_whole_trays_for_a_blocked_spanning_job():
    nodes = cluster(*nvl72(trays=3))
    busy = running(job("busy", devices=8, types=NVL, estimate=3600.0),
                   ("t00", (0, 1, 2, 3)), ("t01", (0, 1, 2, 3)))
    jobs = [job("head", replicas=1, devices=12, types=NVL, submit=0),
            job("long", devices=4, types=NVL, submit=1, estimate=7200.0),
            job("short", devices=4, types=NVL, submit=2, estimate=600.0)]
    decisions = decide(snapshot(nodes, busy), jobs, "backfill")
    assert set(decisions.started()) == {"short"}
    assert "reserved" in decisions.reasons()["head"].reason
    assert "backfill" in decisions.reasons()["long"].reason


def test_ascend_cloudmatrix_replica_of_24_dies_takes_two_nodes_of_twelve():
    nodes = cluster(*(node(f"cm{i}", "Ascend-910C", rack=f"r{i // 4}", supernode="cm384-0")
                      for i in range(8)))
    decisions = decide(snapshot(nodes), [job("npu", replicas=2, devices=24,
                                               types=("Ascend-910C",))], "fifo")
    for parts in parts_of(decisions, "npu"):
        assert [len(r.devices) for r in parts] == [12, 12]
        assert all(r.devices[0] % 2 == 0 for r in parts), "whole, aligned die pairs"
    assert "supernode cm384-0" in decisions.started()["npu"].why


# --- job spec ------------------------------------------------------------------------------------


def spec(count: int, accel: str) -> dict:
    return {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"replicas": 2, "accelerators": {"count": count, "type": accel}}}


def test_job_spec_accepts_a_replica_that_spans_a_supernode():
    parsed = parse_job(spec(8, "GB200"))
    assert parsed.groups[0].accelerators == 8


@pytest.mark.parametrize(("count", "accel", "words"), [
    (16, "H100", "a replica runs on one node"),
    (76, "GB200", "72-device supernode"),
    (71, "GB200", "equal parts"),
])
def test_job_spec_refuses_a_replica_no_domain_can_hold(count: int, accel: str, words: str):
    from suan.errors import SpecError

    with pytest.raises(SpecError) as caught:
        parse_job(spec(count, accel))
    [problem] = caught.value.problems
    assert words in problem.message


# --- launch: one rank set per node part, in domain order -----------------------------------------


def test_spanning_replicas_launch_as_one_world_in_domain_order():
    nodes = cluster(*nvl72())
    big = replace(job("big", replicas=2, devices=8, types=NVL))
    start = decide(snapshot(nodes), [big], "fifo").started()["big"]
    launch = JobLaunch("big", 1, ("train",), accelerator="GB200-NVL72", simulated=False)

    ranks = processes(start.replicas, "per-replica")
    envs = rank_environments(launch, ranks, "10.0.0.1", 29500, base={})
    assert [e["NODE_RANK"] for e in envs] == ["0", "1", "2", "3"]
    assert {e["LOCAL_RANK"] for e in envs} == {"0"}
    assert {e["WORLD_SIZE"] for e in envs} == {"4"}
    assert {e["PET_NNODES"] for e in envs} == {"4"}
    assert {e["PET_NPROC_PER_NODE"] for e in envs} == {"4"}, "torchrun: 4 x 4 = 16 ranks"
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0,1,2,3"] * 4

    ranks = processes(start.replicas, "per-device")
    envs = rank_environments(launch, ranks, "10.0.0.1", 29500, base={})
    assert [e["RANK"] for e in envs] == [str(i) for i in range(16)]
    assert [e["NODE_RANK"] for e in envs] == [str(i // 4) for i in range(16)]
    assert [e["LOCAL_RANK"] for e in envs] == [str(i % 4) for i in range(16)]
    assert {e["WORLD_SIZE"] for e in envs} == {"16"}
    assert {e["LOCAL_WORLD_SIZE"] for e in envs} == {"4"}
    trays = [r.node for r in ranks]
    assert trays == sorted(trays)


def test_replica_parts_groups_consecutive_parts_into_replicas():
    group = ReplicaGroup(replicas=2, accelerators=8)
    the_job = Job("j", (group,))
    placed = tuple(ReplicaPlacement(0, f"t{i}", (0, 1, 2, 3)) for i in range(4))
    assert [[r.node for r in parts] for parts in replica_parts(the_job, placed)] == [
        ["t0", "t1"], ["t2", "t3"]]
    single = tuple(ReplicaPlacement(0, f"n{i}", tuple(range(8))) for i in range(2))
    assert [len(parts) for parts in replica_parts(the_job, single)] == [1, 1]


def test_a_rack_mixing_supernode_and_unlabelled_trays_sorts_without_error():
    # A degraded tray of supernode sn0 (which holds no replica on ready nodes) beside trays
    # without a supernode label: the fill order compares the two kinds of node.
    from suan.cluster.model import NodeHealth

    nodes = cluster(node("a0", "GB200-NVL72", supernode="sn0", health=NodeHealth.DEGRADED),
                    node("b0", "GB200-NVL72"), node("b1", "GB200-NVL72"))
    decisions = decide(snapshot(nodes), [job("pair", replicas=2, devices=4, types=NVL)], "fifo")
    assert {r.node for r in decisions.started()["pair"].replicas} == {"b0", "b1"}


def test_each_part_gets_its_share_of_memory_and_the_job_counts_a_rank_per_part():
    from suan.control.config import RankLimits
    from suan.control.jobs import rank_count

    group = ReplicaGroup(replicas=2, accelerators=8, accelerator_types=NVL, memory_mib=4096,
                         pids=100)
    big = Job("big", (group,))
    start = decide(snapshot(cluster(*nvl72())), [big], "fifo").started()["big"]
    limits = RankLimits()
    memory, pids = limits.per_rank(big, processes(start.replicas, "per-replica"), "per-replica")
    assert memory == (2048,) * 4 and pids == (50,) * 4
    memory, _ = limits.per_rank(big, processes(start.replicas, "per-device"), "per-device")
    assert memory == (512,) * 16
    assert rank_count(big, start.replicas) == 4
    assert rank_count(replace(big, processes="per-device"), start.replicas) == 16


def test_a_supernode_of_nodes_smaller_than_a_part_is_refused_not_left_waiting():
    # Trays registered with 2 GPUs: a replica of 8 is 2 parts of 4, which no tray holds.
    nodes = cluster(*(node(f"t{i}", "GB200-NVL72", devices=2, supernode="sn0")
                      for i in range(6)))
    decisions = decide(snapshot(nodes), [job("big", devices=8, types=NVL)], "fifo")
    [wait] = decisions.pending
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "GB200-NVL72 nodes have at most 2" in wait.reason


def test_the_nvl72_example_job_takes_trays_of_one_rack_of_the_supernode_example():
    from pathlib import Path

    from suan.cluster.spec import load_cluster
    from suan.jobs.spec import load_documents

    root = Path(__file__).resolve().parent.parent / "examples"
    nodes = load_cluster(root / "clusters" / "supernode.yaml")
    (pretrain,), _ = load_documents(root / "jobs" / "nvl72-span.yaml")
    start = decide(snapshot(nodes), [pretrain], "default").started()["nvl72-pretrain"]
    trays = [r.node for r in start.replicas]
    assert len(trays) == 8 and len(set(trays)) == 8
    assert {nodes.node(name).supernode for name in trays} == {"supernode-002"}
    assert all(len(r.devices) == 4 for r in start.replicas)
    assert "replica 1 spans nvl72-000, nvl72-001 of supernode supernode-002" in start.why
