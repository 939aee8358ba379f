"""The FGD packing experiment (Weng et al., ATC'23) on Alibaba openb, as the paper's simulator
runs it (github.com/hkust-adsl/kubernetes-scheduler-simulator, `-tune 1.3 -tuneseed SEED
--shuffle-pod=true`).

For each seed: shuffle the pods, then append clones of uniformly random pods until the next
clone would take the requested GPUs past `inflate` x the cluster's GPUs. Place the pods one by
one with no departures; a pod no node can take is skipped. After every pod the arrived GPU
demand (sum of num_gpu x gpu_milli, as a % of the cluster's GPUs) and the allocated GPU % are
recorded. The headline figure is the unallocated GPU % at 100 % arrived: 100 minus the mean
allocated % over the pods at whose arrival the arrived demand rounds to 100 % (the paper's
`merge_alloc_discrete` reading of its logs).

The pods are placed by the scheduler's packing placers (`suan.sched.packing`): a placement
`NAME` is the placer `pack-NAME` of `suan.sched.placement.PLACERS`, handed each pod as a
one-replica `ReplicaAsk` on one `Ledger`, so that the best placement here is one a live
policy (`fifo-lookahead`) uses.
"""

from __future__ import annotations

import csv
import os
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from suan.catalog import default_catalog
from suan.cluster.model import Cluster
from suan.cluster.snapshot import Snapshot
from suan.cluster.traces import read_openb_nodes
from suan.sched.ledger import Ledger
from suan.sched.packing import PackContext, Shapes, fragmentation, shapes_for, view_of
from suan.sched.placement import PLACERS, GroupFit, Placer, ReplicaAsk
from suan.sim.pods import Pod, read_openb_pods
from suan.sim.report import write_json

PAPER = ("random", "dotprod", "gpu-clustering", "gpu-packing", "bestfit", "fgd")
OURS = ("fgd-ahead", "lookahead")
STRATEGIES = PAPER + OURS
"""Placements by their short names; each is the scheduler placer `pack-<name>`."""
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


def inflated(pods: Sequence[Pod], seed: int, factor: float, gpus: float) -> list[Pod]:
    """The shuffled pods, then clones of uniformly random pods appended until the next clone
    would take the requested GPUs past `factor` x `gpus` (the paper's workload tuning; when
    the pods alone ask for more, random pods are dropped until they fit)."""
    rng = random.Random(seed)
    order = list(pods)
    rng.shuffle(order)
    demand = sum(p.gpus for p in order)
    while order and demand > factor * gpus:
        demand -= order.pop(rng.randrange(len(order))).gpus
    if not any(p.gpus for p in pods):
        return order
    clones = 0
    while True:
        pod = pods[rng.randrange(len(pods))]
        if demand + pod.gpus > factor * gpus:
            return order
        clones += 1
        order.append(replace(pod, name=f"{pod.name}-clone-{clones}"))
        demand += pod.gpus


def run_pack(cluster: Cluster, pods: Sequence[Pod], strategy: str, seed: int,
             inflate: float = 1.3, shapes: Shapes | None = None,
             until_pct: float | None = None) -> PackRun:
    """Place the inflated, shuffled workload one pod at a time with the scheduler's placer
    `pack-<strategy>`, scoring fragmentation against `shapes` (by default the pods' typical
    shapes) and breaking ties in the node order seeded by `seed`; with `until_pct`, stop
    once the arrived GPU demand passes that % of the cluster's GPUs by a whole percent (the
    figures at the end are then those of that point)."""
    started = time.perf_counter()
    ledger = Ledger(Snapshot(cluster), default_catalog())
    capacity = sum(node.devices for node in cluster.nodes)
    workload = inflated(pods, seed, inflate, capacity)
    if until_pct is not None:
        arrived = np.cumsum([pod.gpus for pod in workload]) * 100 / capacity
        workload = workload[: int(np.searchsorted(arrived, until_pct + 1, side="right")) + 1]
    ctx = PackContext(seed=seed, requests=pods, shapes=shapes,
                      generator=np.random.default_rng(seed))
    arrived, allocated, placed, fragmented = _place(ledger, workload, placer(strategy), ctx)
    arrived_pct = 100 * arrived / capacity
    allocated_pct = 100 * allocated / capacity
    return PackRun(strategy, seed, 100 - at_arrived(arrived_pct, allocated_pct, 100),
                   float(allocated_pct[-1]) if len(workload) else 0.0,
                   float(arrived_pct[-1]) if len(workload) else 0.0, placed,
                   len(workload) - placed, time.perf_counter() - started,
                   _curve(arrived_pct, 100 - allocated_pct), fragmented)


def placer(strategy: str) -> Placer:
    """The scheduler's placer for a placement's short name."""
    made = PLACERS.get(f"pack-{strategy}")
    if made is None:
        raise ValueError(f"unknown packing strategy {strategy!r}; known: "
                         f"{', '.join(STRATEGIES)}")
    return made()


def pod_ask(ledger: Ledger, pod: Pod, scopes: dict[tuple[str, ...] | None, tuple[int, ...]]
            ) -> ReplicaAsk:
    """One pod as a one-replica ask over every node it may use (any node for a CPU-only
    pod, a node of one of its GPU models, or of any model, for a GPU pod)."""
    spec = pod.gpu_spec if pod.num_gpu else None
    scope = scopes.get(spec)
    if scope is None:
        wanted = {ledger.catalog.canonical(n) for n in pod.gpu_spec if n in ledger.catalog}
        scope = scopes[spec] = tuple(
            position for position, node in enumerate(ledger.nodes) if spec is None or (
                node.accelerator is not None and (not wanted or node.accelerator in wanted)))
    return ReplicaAsk("|".join(pod.gpu_spec) or ("GPU" if pod.num_gpu else ""), 1,
                      pod.num_gpu, pod.gpu_milli, pod.cpu_milli, pod.memory_mib, None,
                      scope=scope)


def place_pods(ledger: Ledger, pods: Sequence[Pod], chosen: Placer, ctx: PackContext
               ) -> Iterator[tuple[int, tuple[int, ...]] | None]:
    """Place the pods one by one through `chosen`, committing each: per pod its (node
    position, devices), or None when no node can take it."""
    scopes: dict[tuple[str, ...] | None, tuple[int, ...]] = {}
    for pod in pods:
        fit = chosen.place(ledger, pod_ask(ledger, pod, scopes), ctx)
        ledger.commit()
        yield fit.slots[0] if isinstance(fit, GroupFit) else None


def _place(ledger: Ledger, workload: Sequence[Pod], chosen: Placer, ctx: PackContext
           ) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Book every pod that fits: per pod the arrived and allocated GPUs after it, the pods
    placed, and the fragmented GPUs when the arrived demand first reaches the capacity."""
    capacity = sum(node.devices for node in ledger.nodes)
    arrived = np.cumsum([pod.gpus for pod in workload], dtype=float)
    allocated = np.zeros(len(workload))
    placed, fragmented, booked = 0, float("nan"), 0
    for index, (pod, slot) in enumerate(zip(workload, place_pods(ledger, workload, chosen,
                                                                  ctx), strict=True)):
        if slot is not None:
            placed += 1
            booked += pod.num_gpu * pod.gpu_milli
        allocated[index] = booked / 1000
        if np.isnan(fragmented) and arrived[index] >= capacity:
            view, shapes = view_of(ledger), shapes_for(ctx)
            fragmented = float(fragmentation(view.free, view.cpu, shapes,
                                             view.access(shapes)).sum()) / 1000
    return arrived, allocated, placed, fragmented


def at_arrived(arrived_pct: np.ndarray, allocated_pct: np.ndarray, level: int) -> float:
    """Mean allocated % over the pods at whose arrival the arrived GPU demand, rounded to a
    whole percent, is `level` (within one percent when none is); NaN if never reached."""
    rounded = np.array([round(float(x)) for x in arrived_pct])
    for width in (0, 1):
        hit = np.abs(rounded - level) <= width
        if hit.any():
            return float(np.mean(allocated_pct[hit]))
    return float("nan")


def _curve(arrived_pct: np.ndarray, unallocated_pct: np.ndarray) -> list[tuple[float, float]]:
    """(arrived %, unallocated %) at the first pod past each further whole percent."""
    curve: list[tuple[float, float]] = []
    for x, y in zip(arrived_pct, unallocated_pct, strict=True):
        if not curve or x >= curve[-1][0] + 1:
            curve.append((float(x), float(y)))
    return curve


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
    """Per strategy: the mean (and spread) over seeds of the headline figures."""
    table = {}
    for strategy, items in runs.items():
        values = [r.unallocated_at_100 for r in items]
        table[strategy] = {
            "unallocated_gpu_pct_at_100": float(np.mean(values)),
            "unallocated_gpu_pct_at_100_median": float(np.median(values)),
            "unallocated_gpu_pct_at_100_min": float(np.min(values)),
            "unallocated_gpu_pct_at_100_max": float(np.max(values)),
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
    """Run the experiment and print unallocated GPU % at 100 % arrived, per placement, beside
    the published figures (by default those of the pod list's workload, when the shared
    folder has them)."""
    runs = pack_experiment(nodes, pods, strategies, seeds, inflate, console)
    figures = summary(runs)
    if published is None:
        published = published_for(pods)
    console.print(_table(figures, published, len(seeds)))
    document = {"nodes": str(nodes), "pods": str(pods), "inflate": inflate,
                "seeds": list(seeds), "placements": figures, "published": published or {}}
    if json_path:
        write_json(json_path, document)
        console.print(f"wrote {json_path}", markup=False)
    if plots:
        from suan.sim.plots import unallocated

        path = plots if plots.suffix == ".png" else plots / "unallocated.png"
        unallocated({s: _mean_curve(items) for s, items in runs.items()}, path)
        console.print(f"wrote {path}", markup=False)
    return document


def _table(figures: dict[str, dict[str, Any]], published: dict[str, float], seeds: int
           ) -> Table:
    table = Table(title=f"unallocated GPU % at 100 % arrived GPU demand ({seeds} seeds)",
                  title_justify="left")
    for column in ("placement", "ours (mean)", "min-max", "published", "published FGD",
                   "fragmented GPUs at 100 %", "allocated at end %", "wall s"):
        table.add_column(column, justify="left" if column == "placement" else "right")
    for strategy, item in figures.items():
        theirs, fgd = published.get(strategy), published.get("fgd")
        table.add_row(strategy, f"{item['unallocated_gpu_pct_at_100']:.2f}",
                      f"{item['unallocated_gpu_pct_at_100_min']:.2f}-"
                      f"{item['unallocated_gpu_pct_at_100_max']:.2f}",
                      "-" if theirs is None else f"{theirs:.2f}",
                      "-" if fgd is None else f"{fgd:.2f}",
                      f"{item['fragmented_gpus_at_100']:.1f}",
                      f"{item['allocated_gpu_pct_final']:.1f}", f"{item['wall_s']:.0f}")
    return table


def published_for(pods: Path) -> dict[str, float]:
    """The published figures of the pod list's workload (its file name without `.csv` or
    `.csv.gz`), from `fgd_atc23_published/` beside the pod list or one folder up; empty when
    there are none."""
    workload = pods.name.removesuffix(".gz").removesuffix(".csv")
    for folder in (pods.parent, pods.parent.parent):
        path = folder / "fgd_atc23_published" / "summary_at_arrived_100pct.csv"
        if path.is_file():
            return published_fgd(path, workload)
    return {}


def published_fgd(path: Path, workload: str = "openb_pod_list_default") -> dict[str, float]:
    """FGD's published unallocated GPU % at 100 % arrived, by our strategy names."""
    with path.open(newline="") as handle:
        return {FGD_NAMES[row["policy"]]: float(row["unalloc_gpu_pct_at_arrived100_mean"])
                for row in csv.DictReader(handle)
                if row["workload"] == workload and row["policy"] in FGD_NAMES}


def fgd_reproduction(console: Console, quick: bool) -> dict[str, Any]:
    """`suan sim reproduce fgd-openb`: the six FGD placements and ours on the default
    workload, seeds 42-51 (42-43 when `quick`)."""
    from suan.sim.reproduce import SHARED

    folder = SHARED / "traces" / "alibaba_pai_openb_v2023"
    seeds = [42, 43] if quick else list(range(42, 52))
    return pack_report(folder / "openb_node_list_gpu_node.csv",
                       folder / "openb_pod_list_default.csv", list(STRATEGIES), seeds, 1.3,
                       console)
