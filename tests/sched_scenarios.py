"""A fixed set of scheduling scenarios that together reach every extension point: ordering,
fair share, quotas with borrowing and reclaim, placement over several types, gang reserve,
preemption by priority and by service class, EASY backfill, head-of-line blocking, degraded
nodes, fractional devices, elastic gangs, CPU-only groups, per-type speeds with rebalancing,
and planner-ordered types.

`SCENARIOS` maps a name to a builder of (snapshot, pending jobs). Builders are deterministic:
the same name always gives the same inputs, so decisions recorded once can be compared later
(tests/test_sched_recorded.py, data in tests/fixtures/sched_decisions.json).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from sched_helpers import cluster, job, node, running, snapshot

from suan.cluster.model import NodeHealth
from suan.cluster.snapshot import Snapshot
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.queue import QueueSpec

Scenario = tuple[Snapshot, list[Job]]

TEAMS = (QueueSpec("org"),
         QueueSpec("a", parent="org", guaranteed={"accelerators": 16}),
         QueueSpec("b", parent="org", guaranteed={"accelerators": 16}),
         QueueSpec("c", parent="org", guaranteed={"accelerators": 8}, borrow_limit={}))


def two_racks() -> list:
    return [node(f"{rack}{i}", rack=rack) for rack in ("a", "b") for i in range(2)]


def busy_fifo() -> Scenario:
    nodes = cluster(*two_racks())
    busy = running(job("old", devices=6, estimate=500.0), ("a0", tuple(range(6))), start=0.0)
    jobs = [job(f"j{i}", replicas=1 + i % 3, devices=(2, 8, 4)[i % 3], submit=float(i),
                estimate=(None, 100.0, 2_000.0)[i % 3]) for i in range(10)]
    return snapshot(nodes, busy, now=50.0), jobs


def blocked_head() -> Scenario:
    nodes = cluster(node("n0"), node("n1"))
    busy = [running(job(f"r{i}", devices=6, estimate=300.0 * (i + 1)),
                    (f"n{i}", tuple(range(6))), start=0.0) for i in range(2)]
    jobs = [job("wide", replicas=2, devices=8, submit=1.0),
            job("short", devices=2, submit=2.0, estimate=100.0),
            job("long", devices=2, submit=3.0, estimate=10_000.0),
            job("unknown", devices=1, submit=4.0),
            job("never", devices=64, submit=5.0)]
    return snapshot(nodes, *busy, now=10.0), jobs


def priorities() -> Scenario:
    nodes = cluster(node("n0"), node("n1"))
    old = running(job("old", devices=8, checkpoint=3600.0), ("n0", tuple(range(8))),
                  start=0.0, checkpoint=4990.0)
    fresh = running(job("fresh", devices=8), ("n1", tuple(range(8))), start=3000.0)
    jobs = [job("urgent", devices=8, priority=10, submit=1.0),
            job("meh", devices=4, priority=0, submit=2.0),
            job("mid", devices=4, priority=5, submit=3.0)]
    return snapshot(nodes, old, fresh, now=5000.0), jobs


def reclaim() -> Scenario:
    nodes = cluster(*two_racks())
    borrowed = [running(job(f"a{i}", devices=8, queue="a"), (n, tuple(range(8))),
                        start=100.0 * i) for i, n in enumerate(["a0", "a1", "b0", "b1"])]
    jobs = [job("b-job", devices=8, queue="b", submit=1.0),
            job("c-job", devices=4, queue="c", submit=2.0),
            job("a-more", devices=8, queue="a", submit=3.0)]
    return snapshot(nodes, *borrowed, queues=TEAMS, now=1000.0), jobs


def fair_queues() -> Scenario:
    nodes = cluster(*two_racks())
    jobs = [job(f"{q}{i}", devices=(4, 8, 2)[i % 3], queue=q, submit=float(i * 3 + k))
            for k, q in enumerate("abc") for i in range(5)]
    return snapshot(nodes, queues=TEAMS, now=20.0), jobs


def time_sharing() -> Scenario:
    nodes = cluster(node("n0"))
    long_runner = running(job("long", devices=8, attained=40_000.0), ("n0", tuple(range(8))),
                          start=100.0)
    jobs = [job("new", devices=8, submit=50.0), job("newer", devices=4, submit=60.0)]
    return snapshot(nodes, long_runner, now=1000.0), jobs


def degraded_and_shares() -> Scenario:
    nodes = cluster(node("g0"), node("g1", health=NodeHealth.DEGRADED),
                    node("g2", health=NodeHealth.CORDONED), node("a0", "A100"))
    part = running(job("tiny", share=0.5), ("g0", (0,)), milli=500)
    jobs = [job("half", share=0.5, submit=1.0), job("quarter", share=0.25, submit=2.0),
            job("eight", devices=8, submit=3.0), job("more", devices=8, submit=4.0),
            job("elastic", replicas=4, devices=8, min_replicas=1, submit=5.0),
            job("either", devices=4, types=("A100", "H100"), submit=6.0),
            job("spread", replicas=2, devices=2, placement="spread", submit=7.0),
            job("in-rack", replicas=2, devices=8, within="rack", submit=8.0)]
    return snapshot(nodes, part, now=30.0), jobs


def cpu_groups() -> Scenario:
    from suan.cluster.model import Node

    cpu_node = Node("cpu0", None, 0, (), cpu_milli=64_000, memory_mib=1 << 18)
    nodes = cluster(node("g0"), cpu_node)
    prep = Job("prep", (ReplicaGroup(replicas=2, accelerators=0, cpu_milli=16_000,
                                     memory_mib=1024),), submit_time=1.0)
    mixed = Job("mixed", (ReplicaGroup("driver", accelerators=0, cpu_milli=8_000),
                          ReplicaGroup("worker", replicas=1, accelerators=8)), submit_time=2.0)
    return snapshot(nodes, now=5.0), [prep, mixed, job("after", devices=8, submit=3.0)]


def speeds() -> Scenario:
    nodes = cluster(node("v0", "V100", 8), node("p0", "P100", 4), node("k0", "K80", 4))
    fast = (("V100-16GB", 1.0), ("P100", 0.5), ("K80", 0.2))
    slow = replace(job("slow", devices=4, types=("K80",)), type_speeds=fast)
    on_k80 = running(replace(slow, groups=(replace(slow.groups[0], accelerator_types=()),)),
                     ("k0", (0, 1, 2, 3)), start=0.0)
    jobs = [replace(job("likes-p", devices=2, submit=1.0),
                    type_speeds=(("P100", 1.0), ("V100-16GB", 0.9))),
            job("plain", devices=2, submit=2.0)]
    return snapshot(nodes, on_k80, now=100.0), jobs


def planner_types() -> Scenario:
    nodes = cluster(node("h0", "H100", 8), node("a0", "A100", 8))
    planned = replace(job("planned", devices=8, types=("A100", "H100")), model="llama3-8b")
    return snapshot(nodes, now=1.0), [planned, job("plain", devices=8, submit=1.0)]


def supernode() -> Scenario:
    nvl = [node(f"t{i:02d}", "GB200-NVL72", supernode="sn0") for i in range(4)]
    nodes = cluster(*nvl, node("h0"))
    busy = running(job("held", devices=4, types=("GB200-NVL72",)), ("t00", (0, 1, 2, 3)))
    jobs = [job("span", devices=8, types=("GB200-NVL72",), submit=1.0),
            job("pair", replicas=2, devices=4, types=("GB200-NVL72",), in_domain=True,
                submit=2.0),
            job("h", devices=8, types=("H100",), submit=3.0)]
    return snapshot(nodes, busy, now=2.0), jobs


FAVOURS_H100 = (("H100-SXM-80GB", 1.0), ("A100-80GB", 0.4))


def crowd(seed: int) -> Callable[[], Scenario]:
    """A random but seeded mix: 12 nodes of two types, 20 running, 60 waiting jobs."""

    def build() -> Scenario:
        rng = random.Random(seed)
        nodes = [node(f"h{i}", "H100", rack=f"r{i % 3}") for i in range(8)] + \
                [node(f"a{i}", "A100", rack=f"r{i % 3}") for i in range(4)]
        free = {n.name: list(range(n.devices)) for n in nodes}
        queues = ("a", "b", "c")
        allocs = []
        for i in range(20):
            name = rng.choice([n.name for n in nodes if len(free[n.name]) >= 2])
            count = rng.choice((1, 2, 2, 4))
            count = min(count, len(free[name]))
            devices = tuple(free[name][:count])
            del free[name][:count]
            the_job = job(f"run{i}", devices=count, queue=rng.choice(queues),
                          priority=rng.choice((0, 0, 1)), estimate=rng.choice((None, 600.0,
                                                                               5_000.0)),
                          attained=rng.choice((0.0, 2_000.0, 50_000.0)),
                          preemptible=rng.random() > 0.1)
            if name.startswith("a") and i % 2 == 0:
                the_job = replace(the_job, type_speeds=FAVOURS_H100)
            allocs.append(running(the_job, (name, devices), start=rng.uniform(0, 900)))
        jobs = []
        for i in range(60):
            types = rng.choice(((), ("H100",), ("A100",), ("A100", "H100")))
            jobs.append(job(f"w{i}", replicas=rng.choice((1, 1, 1, 2)),
                            devices=rng.choice((1, 2, 4, 8)), types=types,
                            queue=rng.choice(queues), priority=rng.choice((0, 0, 0, 1, 2)),
                            submit=float(rng.randint(0, 900)),
                            estimate=rng.choice((None, 300.0, 3_000.0)),
                            duration=rng.choice((100.0, 1_000.0, 10_000.0)),
                            attained=rng.choice((0.0, 0.0, 5_000.0))))
            if not types and i % 7 == 0:
                jobs[-1] = replace(jobs[-1], type_speeds=FAVOURS_H100)
        return snapshot(cluster(*nodes), *allocs, queues=TEAMS, now=1000.0), jobs

    return build


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "busy-fifo": busy_fifo,
    "blocked-head": blocked_head,
    "priorities": priorities,
    "reclaim": reclaim,
    "fair-queues": fair_queues,
    "time-sharing": time_sharing,
    "degraded-and-shares": degraded_and_shares,
    "cpu-groups": cpu_groups,
    "speeds": speeds,
    "planner-types": planner_types,
    "supernode": supernode,
    "crowd-1": crowd(1),
    "crowd-2": crowd(2),
    "crowd-3": crowd(3),
}


def decide(build: Callable[[], Scenario], policy: str) -> dict[str, object]:
    """The decisions of one cycle of `policy` on the scenario `build` makes, as a dict (the
    planner's advice resolved first, as every caller of the scheduler does)."""
    from suan.plan.jobs import advise_all, cluster_types
    from suan.sched import decide

    the_snapshot, pending = build()
    pending = advise_all(pending, cluster_types(the_snapshot.cluster))
    return decide(the_snapshot, pending, policy).to_dict()
