"""Simulator speed: the whole Philly trace (82,247 jobs) on one 2,000-GPU cluster.

Replays `philly_jobs_sorted.csv.gz` on 250 nodes x 8 V100 under FIFO, LAS and the default
policy, one after the other in this process, and prints one JSON object: per policy the wall
seconds of the replay (reading the trace excluded), events handled, events per second,
scheduling cycles and the average JCT; plus the trace read time and the set-up.

    python bench/sim_speed.py [--policies fifo,las,default] [--limit N] [--trace PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

DEFAULT_TRACE = (Path(__file__).resolve().parents[2] / "shared" / "traces" / "philly"
                 / "philly_jobs_sorted.csv.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--cluster", default="250x8xV100")
    parser.add_argument("--policies", default="fifo,las,default")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--tick", type=float, default=300.0)
    args = parser.parse_args()

    from suan.cluster.generate import cluster_from_shorthand
    from suan.sim.metrics import summarise
    from suan.sim.simulator import SimConfig, simulate
    from suan.sim.traces import read_philly

    started = time.perf_counter()
    jobs = read_philly(args.trace).jobs
    read_s = time.perf_counter() - started
    if args.limit:
        jobs = jobs[: args.limit]
    cluster = cluster_from_shorthand(args.cluster)
    report: dict[str, object] = {
        "trace": args.trace.name, "jobs": len(jobs), "cluster": args.cluster,
        "gpus": sum(cluster.capacity().values()), "tick_s": args.tick,
        "read_trace_s": round(read_s, 2), "cpus": os.cpu_count(),
        "python": platform.python_version(), "policies": {},
    }
    for policy in args.policies.split(","):
        result = simulate(jobs, cluster, policy, SimConfig(tick_s=args.tick or None))
        figures = summarise(result)
        report["policies"][policy] = {  # type: ignore[index]
            "wall_s": round(result.wall_s, 2),
            "events": result.events,
            "events_per_s": round(result.events / result.wall_s),
            "cycles": result.cycles,
            "avg_jct_s": round(figures["avg_jct_s"], 1),
            "finished": figures["finished"],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
