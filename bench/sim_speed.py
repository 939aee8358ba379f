"""Simulator speed: every policy on the Helios and contended Philly setups.

The two setups are those of `suan sim reproduce` (docs/simulator.md): the 68,503 Philly jobs
submitted 2017-10-01..2017-11-30, each of the 11 VCs replayed alone, event-driven (no tick)
over a 128-job waiting window, on

- `helios`: the VCs' Helios node counts (`philly_vc_nodes_helios.csv`, 8 V100 a node);
- `contended`: the shrunken VCs of `contended_nodes.csv` (Tiresias's contended setup);
- `full` (only when asked for): the whole trace (82,247 jobs) on one 250 x 8 V100 cluster
  with a 300-s tick, the earlier form of this benchmark.

For each (setup, policy) it prints the CPU seconds of the replays (`time.process_time`, summed
over the VCs; reading the trace excluded; the minimum over `--repeat` runs), the wall seconds,
events, cycles, preemptions and the average JCT, as one JSON object on stdout. Progress goes to
stderr, one line per replay.

    python bench/sim_speed.py [--setups helios,contended] [--policies fifo,srtf-preemptive]
                              [--vcs 11cb48,ed69ec] [--repeat N] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

SETUPS = ("helios", "contended", "full")
DEFAULT_SETUPS = "helios,contended"


def _parse() -> argparse.Namespace:
    from suan.sched import POLICIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default=DEFAULT_SETUPS,
                        help=f"comma-separated, of {', '.join(SETUPS)}")
    parser.add_argument("--policies", default=",".join(POLICIES.names()),
                        help="comma-separated policy names (default: every policy)")
    parser.add_argument("--vcs", default="", help="only these VCs (helios, contended)")
    parser.add_argument("--limit", type=int, default=0,
                        help="only the first N jobs of each VC (of the trace for `full`)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per replay; keep the min")
    args = parser.parse_args()
    known = POLICIES.names()
    args.policy_list = [p for p in args.policies.split(",") if p]
    args.setup_list = [s for s in args.setups.split(",") if s]
    for name in args.policy_list:
        if name not in known:
            parser.error(f"--policies: unknown policy {name!r}; known: {', '.join(known)}")
    for name in args.setup_list:
        if name not in SETUPS:
            parser.error(f"--setups: unknown setup {name!r}; known: {', '.join(SETUPS)}")
    if args.repeat < 1:
        parser.error("--repeat: must be at least 1")
    return args


def _replays(setup: str, vcs: set[str], limit: int) -> list[tuple[str, list, object, Any]]:
    """(label, jobs, cluster, config) of each replay of a setup."""
    from suan.cluster.generate import cluster_from_shorthand
    from suan.data import require_shared
    from suan.sim.reproduce import EVENT_DRIVEN, HELIOS_WINDOW, vc_nodes
    from suan.sim.simulator import SimConfig
    from suan.sim.traces import read_philly

    trace = require_shared("traces", "philly", "philly_jobs_sorted.csv.gz")
    if setup == "full":
        jobs = read_philly(trace).jobs
        return [("all", jobs[: limit or None], cluster_from_shorthand("250x8xV100"),
                 SimConfig(tick_s=300.0))]
    table = (require_shared("traces", "philly", "philly_vc_nodes_helios.csv")
             if setup == "helios"
             else require_shared("peer-inputs", "tiresias", "philly-helios",
                                 "contended_nodes.csv"))
    replays = []
    for vc, nodes in vc_nodes(table).items():
        if vcs and vc not in vcs:
            continue
        jobs = read_philly(trace, vcs={vc}, start=HELIOS_WINDOW[0], end=HELIOS_WINDOW[1]).jobs
        replays.append((vc, jobs[: limit or None],
                        cluster_from_shorthand(f"{nodes}x8xV100", name=vc), EVENT_DRIVEN))
    return replays


def _measure(replays: list, policy: str, repeat: int) -> dict[str, Any]:
    """Replay every VC under `policy`; CPU and wall seconds are each the minimum of `repeat`
    runs, summed over the VCs."""
    from suan.sim.fingerprint import fingerprint
    from suan.sim.metrics import summarise
    from suan.sim.simulator import simulate

    cpu = wall = 0.0
    jobs = events = cycles = preemptions = 0
    jct_sum = 0.0
    per_vc: dict[str, float] = {}
    results = []
    for label, trace_jobs, cluster, config in replays:
        best_cpu = best_wall = float("inf")
        for _ in range(repeat):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            result = simulate(trace_jobs, cluster, policy, config)
            best_cpu = min(best_cpu, time.process_time() - cpu_start)
            best_wall = min(best_wall, time.perf_counter() - wall_start)
        figures = summarise(result)
        results.append(result)
        cpu += best_cpu
        wall += best_wall
        per_vc[label] = round(best_cpu, 2)
        jobs += figures["finished"]
        jct_sum += figures["avg_jct_s"] * figures["finished"]
        events += result.events
        cycles += result.cycles
        preemptions += figures["preemptions"]
    return {
        "cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "events": events, "cycles": cycles,
        "preemptions": preemptions, "finished": jobs,
        "avg_jct_s": round(jct_sum / max(jobs, 1), 1), "cpu_s_per_replay": per_vc,
        "decisions_sha256": fingerprint(results),
    }


def main() -> None:
    args = _parse()
    vcs = {v for v in args.vcs.split(",") if v}
    report: dict[str, Any] = {
        "measure": f"CPU seconds (time.process_time), min of {args.repeat} run(s), summed "
                   "over the replays of a setup; reading the trace excluded",
        "cpus": os.cpu_count(), "python": platform.python_version(), "limit": args.limit,
        "setups": {},
    }
    total = len(args.setup_list) * len(args.policy_list)
    done = 0
    for setup in args.setup_list:
        started = time.perf_counter()
        replays = _replays(setup, vcs, args.limit)
        entry: dict[str, Any] = {
            "replays": len(replays), "jobs": sum(len(r[1]) for r in replays),
            "read_trace_s": round(time.perf_counter() - started, 2), "policies": {},
        }
        report["setups"][setup] = entry
        for policy in args.policy_list:
            figures = _measure(replays, policy, args.repeat)
            entry["policies"][policy] = figures
            done += 1
            print(f"[{done}/{total}] {setup} {policy}: {figures['cpu_s']} CPU s, "
                  f"{figures['preemptions']} preemptions, avg JCT {figures['avg_jct_s']}",
                  file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from suan.errors import SpecError

    try:
        main()
    except SpecError as error:
        sys.exit(str(error))
