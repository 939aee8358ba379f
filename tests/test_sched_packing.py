"""The packing placers inside the scheduler: `suan sim pack` and a live policy place the same
pods on the same nodes, and the node view follows changes made to the ledger by others."""

from __future__ import annotations

import random

import numpy as np

from suan.catalog import default_catalog
from suan.cluster.model import Cluster, Node
from suan.cluster.snapshot import Snapshot
from suan.jobs.model import Job, ReplicaGroup
from suan.sched import decide, get_policy
from suan.sched.ledger import Ledger
from suan.sched.packing import PackContext, Want, view_of
from suan.sched.placement import PLACERS, ReplicaAsk
from suan.sim.pack import place_pods, placer
from suan.sim.pods import Pod


def t4_cluster(count: int) -> Cluster:
    """`count` nodes of 4 T4 each, with CPU for about three GPU pods per GPU."""
    return Cluster([Node(f"n{i}", "T4", 4, (tuple(range(4)),), 48_000, 1 << 18)
                    for i in range(count)])


def mixed_pods(count: int, seed: int) -> list[Pod]:
    """GPU pods of openb's common shapes: shares, one, two and four whole GPUs."""
    rng = random.Random(seed)
    shapes = [(1, 810, 3000), (1, 470, 8000), (1, 320, 4000), (1, 1000, 12000),
              (2, 1000, 16000), (4, 1000, 24000), (1, 650, 6000)]
    pods = []
    for index in range(count):
        gpus, milli, cpu = rng.choice(shapes)
        pods.append(Pod(f"p{index:03d}", cpu, 1024, gpus, milli))
    return pods


def as_job(pod: Pod, index: int) -> Job:
    return Job(pod.name, (ReplicaGroup(accelerators=pod.num_gpu, accelerator_milli=pod.gpu_milli,
                                       cpu_milli=pod.cpu_milli, memory_mib=pod.memory_mib),),
               submit_time=float(index))


def test_sim_pack_and_the_live_fifo_lookahead_policy_place_pods_alike():
    cluster = t4_cluster(6)
    pods = mixed_pods(40, seed=3)
    assert get_policy("fifo-lookahead").placer.name == "pack-lookahead"
    live = decide(Snapshot(cluster), [as_job(p, i) for i, p in enumerate(pods)],
                  "fifo-lookahead")
    started = live.started()
    ledger = Ledger(Snapshot(cluster), default_catalog())
    ctx = PackContext(seed=f"0.0:{len(pods)}", requests=pods)  # the live cycle's seed
    simulated = list(place_pods(ledger, pods, placer("lookahead"), ctx))
    for pod, slot in zip(pods, simulated, strict=True):
        start = started.get(pod.name)
        if slot is None:
            assert start is None, pod.name
            continue
        assert start is not None, pod.name
        (replica,) = start.replicas
        assert (replica.node, replica.devices) == (cluster.nodes[slot[0]].name, slot[1])
    used = {slot[0] for slot in simulated if slot is not None}
    assert len(used) > 1 and any(slot is None for slot in simulated)  # a full, shared cluster


def test_every_packing_placer_is_registered_and_sim_pack_uses_it():
    for name in ("random", "bestfit", "dotprod", "gpu-packing", "gpu-clustering", "fgd",
                 "fgd-ahead", "lookahead"):
        assert type(placer(name)) is PLACERS[f"pack-{name}"]


def test_the_node_view_follows_bookings_made_by_other_placers():
    ledger = Ledger(Snapshot(t4_cluster(2)), default_catalog())
    assert view_of(ledger).free[0].tolist() == [1000] * 4
    ledger.take(0, (1,), 300, 2000, 0)
    view = view_of(ledger)
    assert view.free[0].tolist() == [1000, 700, 1000, 1000] and view.cpu[0] == 46_000
    mark = ledger.savepoint()
    ledger.take(1, (0, 1, 2, 3), 1000, 0, 0)
    assert view_of(ledger).feasible(Want(0, 0, 1, 1000), np.arange(2)).tolist() == [0]
    ledger.rollback(mark)
    assert view_of(ledger).feasible(Want(0, 0, 4, 1000), np.arange(2)).tolist() == [1]


def test_a_group_that_does_not_fit_whole_leaves_the_ledger_as_it_was():
    ledger = Ledger(Snapshot(t4_cluster(2)), default_catalog())
    ask = ReplicaAsk("T4", 3, 4, 1000, 0, 0, None)  # three 4-GPU replicas on two nodes
    reason = PLACERS["pack-lookahead"]().place(ledger, ask, PackContext())
    assert isinstance(reason, str) and "replica 3 of 3" in reason
    assert ledger.free == [[1000] * 4, [1000] * 4]
    assert view_of(ledger).free.tolist() == [[1000] * 4, [1000] * 4]


def test_lookahead_at_unit_weights_and_fgds_scale_is_fgd_ahead():
    from suan.sched.lookahead import Lookahead, fgd_ahead_score
    from suan.sched.packing import Shapes

    cluster = t4_cluster(8)
    pods = mixed_pods(30, seed=5)
    ledger = Ledger(Snapshot(cluster), default_catalog())
    list(place_pods(ledger, pods[:20], placer("random"), PackContext(seed=1, requests=pods)))
    view, shapes = view_of(ledger), Shapes.typical(pods)
    rows = np.arange(len(cluster.nodes))
    for pod in pods[20:]:
        want = Want(pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli)
        feasible = view.feasible(want, rows)
        ours, theirs = Lookahead()(view, want, feasible, shapes), fgd_ahead_score(
            view, want, feasible, shapes)
        assert ours[0].tolist() == theirs[0].tolist()
        assert (ours[1] is None) == (theirs[1] is None)
        if ours[1] is not None and theirs[1] is not None:
            assert ours[1].tolist() == theirs[1].tolist()


def test_a_wider_tie_leaves_more_nodes_to_the_seeded_order():
    from suan.sched.lookahead import Lookahead
    from suan.sched.packing import Shapes

    ledger = Ledger(Snapshot(t4_cluster(6)), default_catalog())
    ledger.take(0, (0,), 470, 4000, 0)  # a 470 pod beside it leaves 60 on that GPU
    ledger.take(3, (0,), 320, 4000, 0)  # beside a 320 pod, 210: a smaller drop
    ledger.take(1, (0,), 810, 3000, 0)  # it does not fit beside an 810 pod
    ledger.take(2, (0, 1), 1000, 16000, 0)
    view, shapes = view_of(ledger), Shapes.typical(mixed_pods(30, seed=5))
    want = Want(4000, 1024, 1, 470)
    feasible = view.feasible(want, np.arange(6))
    ties = [int((score == score.max()).sum()) for score, _ in (
        Lookahead(scale=scale)(view, want, feasible, shapes) for scale in (0.0, 1000.0, 1e6))]
    assert ties == sorted(ties) and ties[0] == 1 and ties[-1] > 1


def test_a_degraded_node_takes_a_replica_only_when_no_ready_node_can():
    from dataclasses import replace

    from suan.cluster.model import NodeHealth

    nodes = t4_cluster(2).nodes
    cluster = Cluster([replace(nodes[0], health=NodeHealth.DEGRADED), nodes[1]])
    ledger = Ledger(Snapshot(cluster), default_catalog())
    ctx = PackContext(tie_rank=np.array([0, 1]))  # ties would go to the degraded node
    two = PLACERS["pack-lookahead"]().place(ledger, ReplicaAsk("T4", 2, 2, 1000, 0, 0, None),
                                            ctx)
    assert not isinstance(two, str) and [row for row, _ in two.slots] == [1, 1]
    one = PLACERS["pack-lookahead"]().place(ledger, ReplicaAsk("T4", 1, 1, 1000, 0, 0, None),
                                            ctx)
    assert not isinstance(one, str) and one.slots[0][0] == 0


def test_the_derived_tie_width_is_the_smallest_gpu_amount_a_typical_pod_asks_for():
    from suan.sched.fragmentation import TaskShape
    from suan.sched.lookahead import share_scale
    from suan.sched.packing import Shapes

    shapes = Shapes([TaskShape(1, 470, 0, 0.5), TaskShape(1, 160, 0, 0.25),
                     TaskShape(2, 1000, 0, 0.25)])
    assert share_scale(shapes) == 4000  # one score point near 0 is scale / 25 = 160 milli
    assert share_scale(Shapes([TaskShape(8, 1000, 0, 1.0)])) == 25_000
    assert share_scale(Shapes([])) == 1000
