"""Scheduler scale benchmark: 100,000 nodes x 8 accelerators, 1,000,000 pending gang jobs.

Runs cycles of the `default` policy with its budget of starts per cycle
(`suan.sched.budget`): the first from an empty cluster, then, between cycles, a share of the
running jobs finishes and the clock advances; the pending jobs are kept between cycles in a
`suan.sched.pending_index.PendingIndex`. Prints one JSON object: placements_per_s (gang
placements per second of cycle time), cycle_p50_s, cycle_p99_s (wall, each `schedule()`
call) and their CPU times, later_cycle_p99_s (the cycles after the first), first_decision_s
(from the snapshot and the pending list in memory to the first cycle's decisions: filing the
jobs in the index, filing_s, and the first cycle; building the jobs is not counted),
deferred_per_cycle (jobs the budget left to the next cycle), peak_rss_mib, and the set-up.
Targets at the default size: cycle p99 < 1 s, first decision < 5 s, peak memory < 2 GiB,
>= 2,000 placements/s. `--check-cold` also runs every cycle with no kept state and reports
whether both made the same decisions (same_decisions_as_cold).

    python bench/scheduler_scale.py [--nodes 100000] [--jobs 1000000] [--cycles 10]
        [--check-cold]
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import resource
import sys
import time
from pathlib import Path

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


def run_cycles(nodes: int, jobs: int, cycles: int, finish_share: float,
               check_cold: bool) -> dict[str, object]:
    """The cycles, with the pending jobs kept in a `PendingIndex` between them (jobs that
    start leave it, preempted ones come back). Filing the pending list in the index plus the
    first cycle is the first decision: the snapshot and the list are in memory when it
    starts. With `check_cold`, every cycle is run a second time from the plain pending list
    (no state kept) and the two decisions are compared."""
    from suan.cluster.snapshot import Allocation, Snapshot
    from suan.sched import CarriedState, collector_paused, schedule
    from suan.sched.pending_index import PendingIndex

    cluster = build_cluster(nodes)
    queues = build_queues(nodes * 8)
    pending = {job.name: job for job in build_jobs(jobs)}
    running: dict[str, Allocation] = {}
    rng = random.Random(11)
    now, durations, cpu_times, placed, preempted, deferred = 0.0, [], [], 0, 0, []
    state = CarriedState()
    began, began_cpu = time.perf_counter(), time.process_time()
    with collector_paused():  # as the control plane's reconciler does around a pass
        index = PendingIndex(pending.values())
    filing_s, filing_cpu_s = time.perf_counter() - began, time.process_time() - began_cpu
    cold_times: list[float] = []
    same = True
    for _ in range(cycles):
        snapshot = Snapshot(cluster, tuple(running.values()), queues, now)
        waiting = list(pending.values()) if check_cold else None
        began, began_cpu = time.perf_counter(), time.process_time()
        with collector_paused():
            decisions, state = schedule(snapshot, index, "default", state)
        durations.append(time.perf_counter() - began)
        cpu_times.append(time.process_time() - began_cpu)
        if check_cold:
            began_cpu = time.process_time()
            with collector_paused():
                cold, _ = schedule(snapshot, waiting or (), "default")
            cold_times.append(time.process_time() - began_cpu)
            same = same and _same(decisions, cold)
            del cold
        placed += len(decisions.starts)
        preempted += len(decisions.preemptions)
        deferred.append(decisions.deferred)
        for victim in decisions.preemptions:
            alloc = running.pop(victim.job)
            pending[alloc.job.name] = alloc.job
            index.add(alloc.job)
        for start in decisions.starts:
            running[start.job.name] = Allocation(start.job, start.replicas, now)
            pending.pop(start.job.name)
            index.discard(start.job.name)
        del decisions
        finished = rng.sample(sorted(running), int(len(running) * finish_share))
        for name in finished:
            running.pop(name)
        now += 300.0
        if not pending:
            break
    first_cycle_s, first_cycle_cpu_s = durations[0], cpu_times[0]
    later, later_cpu = sorted(durations[1:]) or [0.0], sorted(cpu_times[1:]) or [0.0]
    durations.sort()
    cpu_times.sort()
    total = sum(durations)
    result: dict[str, object] = {
        "first_decision_s": round(filing_s + first_cycle_s, 3),
        "first_decision_cpu_s": round(filing_cpu_s + first_cycle_cpu_s, 3),
        "filing_s": round(filing_s, 3),
        "first_cycle_s": round(first_cycle_s, 3),
        "cycles": len(durations),
        "placements": placed,
        "preemptions": preempted,
        "deferred_per_cycle": deferred,
        "placements_per_s": round(placed / total, 1),
        "cycle_p50_s": round(durations[len(durations) // 2], 4),
        "cycle_p99_s": round(_percentile(durations, 0.99), 4),
        "cycle_max_s": round(durations[-1], 4),
        "cycle_total_s": round(total, 3),
        "cycle_cpu_p50_s": round(cpu_times[len(cpu_times) // 2], 4),
        "cycle_cpu_p99_s": round(_percentile(cpu_times, 0.99), 4),
        "later_cycle_p99_s": round(_percentile(later, 0.99), 4),
        "later_cycle_cpu_p99_s": round(_percentile(later_cpu, 0.99), 4),
        "pending_left": len(pending),
    }
    if check_cold:
        result["same_decisions_as_cold"] = same
        result["cold_cycle_cpu_p50_s"] = round(sorted(cold_times)[len(cold_times) // 2], 4)
    return result


def _same(warm, cold) -> bool:  # type: ignore[no-untyped-def]
    """Whether two cycles decided alike: starts, preemptions, every reason, the count
    deferred and the reservation."""
    return (
        warm.starts == cold.starts
        and warm.preemptions == cold.preemptions
        and warm.deferred == cold.deferred
        and warm.reservation == cold.reservation
        and len(warm.pending) == len(cold.pending)
        and warm.reasons() == cold.reasons()
    )


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values."""
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--finish-share", type=float, default=0.05)
    parser.add_argument("--check-cold", action="store_true",
                        help="run each cycle again with no kept state and compare decisions")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    result: dict[str, object] = {
        "benchmark": "scheduler_scale",
        "policy": "default",
        "nodes": args.nodes,
        "devices": args.nodes * 8,
        "jobs": args.jobs,
    }
    result.update(run_cycles(args.nodes, args.jobs, args.cycles, args.finish_share,
                             args.check_cold))
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
