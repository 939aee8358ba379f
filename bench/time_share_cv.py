"""Cross-validation of the `default` policy's minimum run before a job may be preempted by
its own queue (`VictimPreemption.class_min_run_s`), on the contended Philly VCs.

Each Philly virtual cluster (the Helios window, the contended node counts of
`peer-inputs/tiresias/philly-helios/contended_nodes.csv`, 8 V100 a node) is replayed under
the `default` policy with each candidate minimum (and with time sharing off), with a restart
that costs `--overhead` seconds and loses the work since the last checkpoint (every
`--checkpoint` seconds of work). Leave-one-VC-out: for each VC, the candidate with the lowest
mean JCT ratio (to the minimum 0) over the *other* VCs is chosen and its ratio on the held-out
VC is reported. Prints one JSON object.

    python bench/time_share_cv.py [--vcs a,b,...] [--overhead 60] [--checkpoint 1800]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CANDIDATES = (0.0, 60.0, 150.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, math.inf)
"""Minimum runs tried, in seconds; inf means no time sharing inside a queue at all."""


def replay(task: tuple[str, int, float, float, float]) -> dict[str, Any]:
    """One VC under one minimum run: its average JCT, preemptions and wall time."""
    from suan.cluster.generate import cluster_from_shorthand
    from suan.sched.policy import get_policy
    from suan.sim.metrics import summarise
    from suan.sim.reproduce import HELIOS_WINDOW, philly
    from suan.sim.runtime import RuntimeModel
    from suan.sim.simulator import SimConfig, simulate
    from suan.sim.traces import read_philly

    vc, nodes, minimum, overhead, checkpoint = task
    jobs = read_philly(philly("philly_jobs_sorted.csv.gz"), vcs={vc},
                       start=HELIOS_WINDOW[0], end=HELIOS_WINDOW[1]).jobs
    base = get_policy("default")
    by_class = not math.isinf(minimum)
    policy = replace(base, preempt=replace(base.preempt, by_class=by_class,
                                           class_min_run_s=minimum if by_class else 0.0))
    config = SimConfig(tick_s=None, queue_depth=128, runtime=RuntimeModel(
        restart_overhead_s=overhead, checkpoint_interval_s=checkpoint))
    started = time.perf_counter()
    figures = summarise(simulate(jobs, cluster_from_shorthand(f"{nodes}x8xV100", name=vc),
                                 policy, config))
    return {"vc": vc, "min_run_s": minimum, "jobs": len(jobs),
            "avg_jct_s": figures["avg_jct_s"], "preemptions": figures["preemptions"],
            "wall_s": round(time.perf_counter() - started, 1)}


def choose(ratios: dict[str, dict[float, float]], vcs: list[str]) -> float:
    """The candidate with the lowest mean JCT ratio over `vcs` (ties: the larger minimum,
    which preempts less)."""
    return min(CANDIDATES, key=lambda m: (statistics.fmean(ratios[vc][m] for vc in vcs), -m))


def main() -> None:
    from suan.sim.reproduce import PER_VC_TRACE, peer_input, vc_nodes

    parser = argparse.ArgumentParser()
    parser.add_argument("--vcs", default="")
    parser.add_argument("--overhead", type=float, default=60.0)
    parser.add_argument("--checkpoint", type=float, default=1800.0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    nodes = vc_nodes(peer_input(f"{PER_VC_TRACE}/contended_nodes.csv"))
    vcs = [v for v in args.vcs.split(",") if v] or sorted(nodes)
    tasks = [(vc, nodes[vc], m, args.overhead, args.checkpoint) for vc in vcs
             for m in CANDIDATES]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(replay, tasks))
    jct = {(r["vc"], r["min_run_s"]): r["avg_jct_s"] for r in rows}
    ratios = {vc: {m: jct[(vc, m)] / jct[(vc, 0.0)] for m in CANDIDATES} for vc in vcs}
    folds = []
    for held in vcs:
        chosen = choose(ratios, [vc for vc in vcs if vc != held])
        folds.append({"held_out": held, "chosen_min_run_s": chosen,
                      "held_out_ratio": round(ratios[held][chosen], 4),
                      "held_out_best_s": min(CANDIDATES, key=lambda m: ratios[held][m])})
    print(json.dumps({
        "benchmark": "time_share_cv", "overhead_s": args.overhead,
        "checkpoint_s": args.checkpoint,
        "mean_ratio": {str(m): round(statistics.fmean(ratios[vc][m] for vc in vcs), 4)
                       for m in CANDIDATES},
        "folds": folds,
        "held_out_mean_ratio": round(statistics.fmean(f["held_out_ratio"] for f in folds), 4),
        "rows": rows,
    }))


if __name__ == "__main__":
    main()
