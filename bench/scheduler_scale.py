"""Scheduler scale benchmark: 10,000 nodes x 8 accelerators, 100,000 pending gang jobs.

Runs cycles of the `default` policy: the first from an empty cluster, then, between cycles, a
share of the running jobs finishes and the clock advances. Prints one JSON object:
placements_per_s (gang placements per second of cycle time), cycle_p50_s, cycle_p99_s,
first_decision_s (a fresh process: import, build the cluster and the queue, first decision),
peak_rss_mib, and the set-up.

    python bench/scheduler_scale.py [--nodes 10000] [--jobs 100000] [--cycles 40]
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

START = time.time()

SIZE_MIX: tuple[tuple[int, float], ...] = (
    (1, 0.42), (2, 0.10), (4, 0.12), (8, 0.16), (16, 0.08), (32, 0.05),
    (64, 0.035), (128, 0.02), (256, 0.01), (512, 0.005),
)
"""Devices per job and their share of jobs: mostly small jobs, a long tail of large gangs
(the shape of Philly and Helios job-size distributions, stretched to 512)."""

TEAMS = 8


def build_cluster(nodes: int):  # type: ignore[no-untyped-def]
    from suan.cluster.generate import generate_cluster

    return generate_cluster(nodes, "H100", nodes_per_rack=32, racks_per_block=8,
                            blocks_per_zone=10)


def build_queues(devices: int):  # type: ignore[no-untyped-def]
    from suan.jobs.queue import QueueSpec

    share = devices // TEAMS
    queues = [QueueSpec("org")]
    for team in range(TEAMS):
        queues.append(QueueSpec(f"team-{team}", parent="org",
                                guaranteed={"accelerators": share},
                                borrow_limit={"accelerators": share * 2}))
    return tuple(queues)


def build_jobs(count: int, seed: int = 7):  # type: ignore[no-untyped-def]
    """`count` jobs drawn from SIZE_MIX. Jobs of one size share their (immutable) replica
    group and topology objects, as jobs built from one template would."""
    from itertools import accumulate

    from suan.jobs.model import Job, ReplicaGroup, TopologyConstraint

    rng = random.Random(seed)
    cumulative = list(accumulate(weight for _, weight in SIZE_MIX))
    groups, topologies = [], []
    for size, _ in SIZE_MIX:
        replicas, per = (size // 8, 8) if size > 8 else (1, size)
        groups.append((ReplicaGroup(replicas=replicas, accelerators=per, cpu_milli=per * 8000,
                                    memory_mib=per * 65536),))
        topologies.append(TopologyConstraint(within="block") if size >= 64
                          else TopologyConstraint())
    estimates = (None, 3600.0, 4 * 3600.0, 24 * 3600.0)
    jobs = []
    for index in range(count):
        kind = bisect.bisect(cumulative, rng.random() * cumulative[-1])
        jobs.append(Job(
            name=f"job-{index:06d}", groups=groups[kind], queue=f"team-{index % TEAMS}",
            priority=1 if rng.random() < 0.05 else 0, submit_time=float(index),
            runtime_estimate_s=estimates[rng.randrange(4)], topology=topologies[kind],
            checkpoint_interval_s=1800.0,
        ))
    return jobs


def first_decision(nodes: int, jobs: int) -> None:
    """Child mode: build everything, run one cycle, print the wall time of the decision."""
    from suan.cluster.snapshot import Snapshot
    from suan.sched import collector_paused, schedule

    cluster = build_cluster(nodes)
    snapshot = Snapshot(cluster, queues=build_queues(nodes * 8), now=0.0)
    with collector_paused():
        decisions, _ = schedule(snapshot, build_jobs(jobs), "default")
    print(json.dumps({"decided_at": time.time(), "starts": len(decisions.starts)}))


def measure_first_decision(nodes: int, jobs: int) -> float:
    began = time.time()
    child = subprocess.run(
        [sys.executable, __file__, "--first-decision", "--nodes", str(nodes), "--jobs", str(jobs)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])["decided_at"] - began


def run_cycles(nodes: int, jobs: int, cycles: int, finish_share: float) -> dict[str, object]:
    from suan.cluster.snapshot import Allocation, Snapshot
    from suan.sched import CarriedState, collector_paused, schedule

    cluster = build_cluster(nodes)
    queues = build_queues(nodes * 8)
    pending = {job.name: job for job in build_jobs(jobs)}
    running: dict[str, Allocation] = {}
    rng = random.Random(11)
    now, durations, cpu_times, placed, preempted = 0.0, [], [], 0, 0
    state = CarriedState()
    for _ in range(cycles):
        snapshot = Snapshot(cluster, tuple(running.values()), queues, now)
        began, began_cpu = time.perf_counter(), time.process_time()
        with collector_paused():  # as the control plane's reconciler does
            decisions, state = schedule(snapshot, list(pending.values()), "default", state)
        durations.append(time.perf_counter() - began)
        cpu_times.append(time.process_time() - began_cpu)
        placed += len(decisions.starts)
        preempted += len(decisions.preemptions)
        for victim in decisions.preemptions:
            alloc = running.pop(victim.job)
            pending[alloc.job.name] = alloc.job
        for start in decisions.starts:
            running[start.job.name] = Allocation(start.job, start.replicas, now)
            pending.pop(start.job.name)
        finished = rng.sample(sorted(running), int(len(running) * finish_share))
        for name in finished:
            running.pop(name)
        now += 300.0
        if not pending:
            break
    first_cycle_s = durations[0]
    durations.sort()
    cpu_times.sort()
    total = sum(durations)
    return {
        "cycles": len(durations),
        "placements": placed,
        "preemptions": preempted,
        "placements_per_s": round(placed / total, 1),
        "cycle_p50_s": round(durations[len(durations) // 2], 4),
        "cycle_p99_s": round(_percentile(durations, 0.99), 4),
        "cycle_max_s": round(durations[-1], 4),
        "cycle_total_s": round(total, 3),
        "first_cycle_s": round(first_cycle_s, 4),
        "cycle_cpu_p50_s": round(cpu_times[len(cpu_times) // 2], 4),
        "cycle_cpu_p99_s": round(_percentile(cpu_times, 0.99), 4),
        "pending_left": len(pending),
    }


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values."""
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--finish-share", type=float, default=0.05)
    parser.add_argument("--first-decision", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if args.first_decision:
        first_decision(args.nodes, args.jobs)
        return
    result: dict[str, object] = {
        "benchmark": "scheduler_scale",
        "policy": "default",
        "nodes": args.nodes,
        "devices": args.nodes * 8,
        "jobs": args.jobs,
    }
    result["first_decision_s"] = round(measure_first_decision(args.nodes, args.jobs), 3)
    result.update(run_cycles(args.nodes, args.jobs, args.cycles, args.finish_share))
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
