"""The FGD packing experiment (Weng et al., ATC'23) on Alibaba openb.

For each seed: shuffle the pods, inflate the workload by cloning randomly chosen pods up to
`inflate` times the pod count (stopping early once the requested CPU or GPU would exceed
`inflate` times the cluster's), then place the pods one by one with no departures. A pod no
node can take is skipped. After every pod the arrived GPU demand (sum of num_gpu x gpu_milli,
as a % of the cluster's GPUs) and the unallocated GPU % are recorded; the headline figure is
the unallocated GPU % when the arrived demand first reaches 100 %.
"""

from __future__ import annotations

import csv
import os
import random
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from suan.catalog import default_catalog
from suan.cluster.model import Cluster
from suan.cluster.traces import read_openb_nodes
from suan.sched.fragmentation import TaskShape, workload_shapes
from suan.sim.packing import (
    GPU_CHOOSERS,
    STRATEGIES,
    PackState,
    Shapes,
    choose,
    choose_gpu,
    fragmentation,
)
from suan.sim.pods import Pod, read_openb_pods
from suan.sim.report import write_json

SHAPES = 100
"""Task shapes (the most common (GPUs, share, CPU) triples) FGD scores against."""
FGD_NAMES = {"Random": "random", "DotProd": "dotprod", "GpuClustering": "gpu-clustering",
             "GpuPacking": "gpu-packing", "BestFit": "bestfit", "FGD": "fgd"}


@dataclass
class PackRun:
    """One (strategy, seed) run: the curve and its headline figures."""

    strategy: str
    seed: int
    unallocated_at_100: float
    allocated_final_pct: float
    arrived_final_pct: float
    placed: int
    failed: int
    wall_s: float
    curve: list[tuple[float, float]] = field(default_factory=list)
    fragmented_at_100: float = float("nan")
    """GPUs that no task shape of the workload could use, when arrived demand reaches 100 %."""


def inflated(pods: Sequence[Pod], seed: int, factor: float, gpus: float, cpu: float
             ) -> list[Pod]:
    """The shuffled pods followed by random clones, up to `factor` x the count and
    `factor` x the cluster's GPUs and CPU."""
    rng = random.Random(seed)
    order = list(pods)
    rng.shuffle(order)
    want_gpu, want_cpu = sum(p.gpus for p in order), sum(p.cpu_milli for p in order)
    target = round(factor * len(order))
    clones = 0
    while len(order) < target:
        pod = pods[rng.randrange(len(pods))]
        if want_gpu + pod.gpus > factor * gpus or want_cpu + pod.cpu_milli > factor * cpu:
            break
        clones += 1
        order.append(replace(pod, name=f"{pod.name}-clone-{clones}"))
        want_gpu += pod.gpus
        want_cpu += pod.cpu_milli
    return order


def run_pack(cluster: Cluster, pods: Sequence[Pod], strategy: str, seed: int,
             inflate: float = 1.3, shapes: Sequence[TaskShape] | None = None) -> PackRun:
    """Place the inflated, shuffled workload one pod at a time with `strategy`."""
    started = time.perf_counter()
    state = PackState(cluster, default_catalog())
    capacity = state.capacity
    workload = inflated(pods, seed, inflate, capacity, float(state.cpu.sum()))
    table = Shapes(shapes if shapes is not None else pod_shapes(pods))
    rng = np.random.default_rng(seed)
    arrived = 0.0
    curve: list[tuple[float, float]] = []
    at_100 = None
    fragmented = float("nan")
    placed = failed = 0
    for pod in workload:
        arrived += pod.gpus
        rows = state.feasible(pod)
        if len(rows):
            if strategy in GPU_CHOOSERS and pod.num_gpu and pod.gpu_milli < 1000:
                row, device = choose_gpu(state, pod, rows, strategy, table)
                state.book(row, pod, device)
            else:
                state.book(choose(state, pod, rows, strategy, table, rng), pod)
            placed += 1
        else:
            failed += 1
        unallocated = 100 * (capacity - state.allocated_milli / 1000) / capacity
        arrived_pct = 100 * arrived / capacity
        if not curve or arrived_pct >= curve[-1][0] + 1:
            curve.append((arrived_pct, unallocated))
        if at_100 is None and arrived_pct >= 100:
            at_100 = unallocated
            fragmented = float(fragmentation(state.free, state.cpu, table).sum()) / 1000
    return PackRun(strategy, seed, at_100 if at_100 is not None else float("nan"),
                   100 * state.allocated_milli / 1000 / capacity, 100 * arrived / capacity,
                   placed, failed, time.perf_counter() - started, curve, fragmented)


def pod_shapes(pods: Sequence[Pod]) -> list[TaskShape]:
    return workload_shapes([(p.num_gpu, p.gpu_milli, p.cpu_milli) for p in pods], SHAPES)


def _job(task: tuple[str, str, str, int, float]) -> PackRun:
    nodes, pods_path, strategy, seed, inflate = task
    pods, _ = read_openb_pods(pods_path)
    return run_pack(read_openb_nodes(nodes), pods, strategy, seed, inflate)


def pack_experiment(nodes: Path, pods: Path, strategies: Sequence[str], seeds: Sequence[int],
                    inflate: float = 1.3, console: Console | None = None
                    ) -> dict[str, list[PackRun]]:
    """Every (strategy, seed) run, in parallel worker processes."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        from suan.errors import FieldProblem, SpecError

        raise SpecError("--placement", [FieldProblem("placement", f"unknown {unknown}",
                                                     ", ".join(STRATEGIES))])
    read_openb_pods(pods)
    tasks = [(str(nodes), str(pods), s, seed, inflate) for s in strategies for seed in seeds]
    runs: dict[str, list[PackRun]] = {s: [] for s in strategies}
    status = (console or Console(quiet=True)).status("packing")
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool, status:
        for done, run in enumerate(pool.map(_job, tasks), start=1):
            status.update(f"packed {done}/{len(tasks)} (placement, seed) runs")
            runs[run.strategy].append(run)
    return runs


def summary(runs: dict[str, list[PackRun]]) -> dict[str, dict[str, Any]]:
    """Per strategy: the mean over seeds of the headline figures."""
    table = {}
    for strategy, items in runs.items():
        values = [r.unallocated_at_100 for r in items]
        table[strategy] = {
            "unallocated_gpu_pct_at_100": float(np.mean(values)),
            "unallocated_gpu_pct_at_100_median": float(np.median(values)),
            "fragmented_gpus_at_100": float(np.mean([r.fragmented_at_100 for r in items])),
            "allocated_gpu_pct_final": float(np.mean([r.allocated_final_pct for r in items])),
            "arrived_gpu_pct_final": float(np.mean([r.arrived_final_pct for r in items])),
            "seeds": [r.seed for r in items],
            "per_seed": values,
            "wall_s": float(sum(r.wall_s for r in items)),
        }
    return table


def _mean_curve(items: Sequence[PackRun]) -> list[tuple[float, float]]:
    grid = np.arange(0, 131)
    values = [np.interp(grid, [x for x, _ in r.curve], [y for _, y in r.curve],
                        right=np.nan) for r in items if r.curve]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # grid points no seed reached
        mean = np.nanmean(values, axis=0)
    return [(float(x), float(y)) for x, y in zip(grid, mean, strict=True) if not np.isnan(y)]


def pack_report(nodes: Path, pods: Path, strategies: Sequence[str], seeds: Sequence[int],
                inflate: float, console: Console, *, json_path: Path | None = None,
                plots: Path | None = None, published: dict[str, float] | None = None
                ) -> dict[str, Any]:
    """Run the experiment and print unallocated GPU % at 100 % arrived, per placement."""
    runs = pack_experiment(nodes, pods, strategies, seeds, inflate, console)
    figures = summary(runs)
    table = Table(title=f"unallocated GPU % at 100 % arrived GPU demand ({len(seeds)} seeds)",
                  title_justify="left")
    for column in ("placement", "ours (mean)", "published", "fragmented GPUs at 100 %",
                   "allocated at end %", "wall s"):
        table.add_column(column, justify="left" if column == "placement" else "right")
    for strategy, item in figures.items():
        theirs = (published or {}).get(strategy)
        table.add_row(strategy, f"{item['unallocated_gpu_pct_at_100']:.2f}",
                      "-" if theirs is None else f"{theirs:.2f}",
                      f"{item['fragmented_gpus_at_100']:.1f}",
                      f"{item['allocated_gpu_pct_final']:.1f}", f"{item['wall_s']:.0f}")
    console.print(table)
    document = {"nodes": str(nodes), "pods": str(pods), "inflate": inflate,
                "seeds": list(seeds), "placements": figures, "published": published or {}}
    if json_path:
        write_json(json_path, document)
        console.print(f"wrote {json_path}")
    if plots:
        from suan.sim.plots import unallocated

        path = plots if plots.suffix == ".png" else plots / "unallocated.png"
        unallocated({s: _mean_curve(items) for s, items in runs.items()}, path)
        console.print(f"wrote {path}")
    return document


def published_fgd(path: Path, workload: str = "openb_pod_list_default") -> dict[str, float]:
    """FGD's published unallocated GPU % at 100 % arrived, by our strategy names."""
    with path.open(newline="") as handle:
        return {FGD_NAMES[row["policy"]]: float(row["unalloc_gpu_pct_at_arrived100_mean"])
                for row in csv.DictReader(handle)
                if row["workload"] == workload and row["policy"] in FGD_NAMES}


def fgd_reproduction(console: Console, quick: bool) -> dict[str, Any]:
    """`suan sim reproduce fgd-openb`: the six FGD placements and ours, seeds 42-51."""
    from suan.sim.reproduce import SHARED

    folder = SHARED / "traces" / "alibaba_pai_openb_v2023"
    published = published_fgd(folder / "fgd_atc23_published" / "summary_at_arrived_100pct.csv")
    seeds = [42, 43] if quick else list(range(42, 52))
    return pack_report(folder / "openb_node_list_gpu_node.csv",
                       folder / "openb_pod_list_default.csv", list(STRATEGIES), seeds, 1.3,
                       console, published=published)
