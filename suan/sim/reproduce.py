"""`suan sim reproduce`: published setups, run through our simulator, printed beside the
published numbers. The data files live in the shared folder beside the repository
(`../shared/traces`, `../shared/peer-inputs`); docs/simulator.md explains each setup.

- `helios-philly`: Helios (SC'21) on Philly: 11 VCs simulated independently on their Helios
  node counts (8 GPUs a node), the 68,503 jobs submitted 2017-10-01..2017-11-30,
  consolidated placement.
- `philly-contended`: the same jobs on the shrunken VCs of `contended_nodes.csv`, beside the
  Tiresias simulator's numbers.
- `peers`: the Tiresias and Gavel peer traces on their clusters, beside the peers' numbers
  (on Gavel's heterogeneous V100/P100/K80 clusters, our heterogeneity-aware `default` beside
  Gavel's best heterogeneity-aware policy).
- `fgd-openb`: the FGD (ATC'23) packing experiment on Alibaba openb (see `suan.sim.pack`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from suan.errors import FieldProblem, SpecError
from suan.sim.metrics import summarise
from suan.sim.report import fmt, write_json
from suan.sim.simulator import SimConfig, simulate

SHARED = Path(os.environ.get("SUAN_SHARED", Path(__file__).resolve().parents[3] / "shared"))
PHILLY = SHARED / "traces" / "philly"
TIRESIAS = SHARED / "peer-inputs" / "tiresias"
GAVEL = SHARED / "peer-inputs" / "gavel"
HELIOS_WINDOW = ("2017-10-01 00:00:00", "2017-11-30 23:59:00")
EVENT_DRIVEN = SimConfig(tick_s=None, queue_depth=128)
"""Reproductions run cycles on events only (arrivals, finishes, LAS demotions), each over the
first 128 waiting jobs in the policy's order."""

HELIOS_POLICIES = {"fifo": "fifo", "sjf": "sjf", "srtf": "srtf-preemptive"}
"""Helios policy -> ours."""
CONTENDED_POLICIES: dict[str, str | None] = {
    "fifo": None, "fifo-besteffort": "fifo", "las-preemptive": "dlas-gpu",
    "srtf-preemptive": "shortest-gpu", "default": None,
}
"""Our policy -> the Tiresias policy it is compared with."""
TIRESIAS_CONTENDED = {"fifo": 146_083, "dlas-gpu": 40_965, "shortest-gpu": 25_061}
TIRESIAS_NOMINAL = {"fifo": 11_585, "dlas-gpu": 11_551, "shortest-gpu": 11_530}


@dataclass
class Row:
    """One line of a comparison: a label, our figure and the published one."""

    label: str
    ours: float | None
    published: float | None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> str:
        if not self.ours or not self.published:
            return "-"
        return f"{self.ours / self.published:.2f}"


def _table(title: str, rows: Sequence[Row], ours: str = "ours", theirs: str = "published"
           ) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("setup", ours, theirs, "ours / theirs", "note"):
        table.add_column(column, justify="left" if column in ("setup", "note") else "right")
    for row in rows:
        table.add_row(row.label, fmt(row.ours, "s"), fmt(row.published, "s"), row.ratio,
                      row.note)
    return table


# ---------------------------------------------------------------------- Philly per VC
def vc_nodes(path: Path) -> dict[str, int]:
    with path.open(newline="") as handle:
        return {row["vc"]: int(row["node num"]) for row in csv.DictReader(handle)}


def _one_vc(task: tuple[str, int, str]) -> dict[str, Any]:
    """Replay one VC under one policy (run in a worker process)."""
    from suan.cluster.generate import cluster_from_shorthand
    from suan.sim.traces import read_philly

    vc, nodes, policy = task
    jobs = read_philly(PHILLY / "philly_jobs_sorted.csv.gz", vcs={vc}, start=HELIOS_WINDOW[0],
                       end=HELIOS_WINDOW[1]).jobs
    cluster = cluster_from_shorthand(f"{nodes}x8xV100", name=vc)
    result = simulate(jobs, cluster, policy, EVENT_DRIVEN)
    figures = summarise(result)
    figures.pop("queues")
    figures["vc"] = vc
    figures["sum_jct_s"] = figures["avg_jct_s"] * figures["finished"]
    figures["sum_queue_s"] = figures["avg_queue_s"] * figures["finished"]
    return figures


def run_vcs(nodes: dict[str, int], policies: Sequence[str], console: Console,
            workers: int | None = None) -> dict[str, dict[str, Any]]:
    """Every (VC, policy) replay, in parallel; per policy the all-jobs averages and per VC."""
    big_first = ("6214e9", "11cb48", "6c71a0", "b436b2")
    tasks = sorted(((vc, nodes[vc], p) for vc in nodes for p in policies),
                   key=lambda t: big_first.index(t[0]) if t[0] in big_first else 9)
    results: dict[str, dict[str, Any]] = {p: {"vcs": {}} for p in policies}
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool, console.status(
            "replaying VCs") as status:
        for done, figures in enumerate(pool.map(_one_vc, tasks), start=1):
            status.update(f"replayed {done}/{len(tasks)} (VC, policy) pairs")
            results[figures["policy"]]["vcs"][figures["vc"]] = figures
    for summary in results.values():
        vcs = summary["vcs"].values()
        jobs = sum(f["finished"] for f in vcs)
        summary["jobs"] = jobs
        summary["avg_jct_s"] = sum(f["sum_jct_s"] for f in vcs) / max(jobs, 1)
        summary["avg_queue_s"] = sum(f["sum_queue_s"] for f in vcs) / max(jobs, 1)
        summary["wall_s"] = sum(f["wall_s"] for f in vcs)
    return results


def _published_helios() -> dict[tuple[str, str], tuple[float, float]]:
    with (PHILLY / "helios_sc21_philly_published_results.csv").open(newline="") as handle:
        return {(r["vc"], r["policy"]): (float(r["avg_jct_s"]), float(r["avg_queue_s"]))
                for r in csv.DictReader(handle)}


def helios(console: Console, quick: bool) -> dict[str, Any]:
    nodes = vc_nodes(PHILLY / "philly_vc_nodes_helios.csv")
    if quick:
        nodes = {vc: n for vc, n in nodes.items() if vc in ("11cb48", "103959", "ed69ec")}
    ours = run_vcs(nodes, list(HELIOS_POLICIES.values()), console)
    published = _published_helios()
    rows = []
    for theirs, mine in HELIOS_POLICIES.items():
        scope = "all" if not quick else None
        pub = published.get((scope, theirs)) if scope else None
        rows.append(Row(f"{theirs} (ours: {mine}) avg JCT", ours[mine]["avg_jct_s"],
                        pub[0] if pub else None, f"{ours[mine]['jobs']:,} jobs"))
        rows.append(Row(f"{theirs} avg queueing", ours[mine]["avg_queue_s"],
                        pub[1] if pub else None))
    console.print(_table("Helios SC'21 on Philly (11 VCs, nominal nodes)", rows))
    tiresias = [Row(f"Tiresias {p} vs ours", ours[m]["avg_jct_s"], TIRESIAS_NOMINAL[p])
                for m, p in (("fifo", "fifo"), ("srtf-preemptive", "shortest-gpu"))]
    console.print(_table("the same jobs and nodes, Tiresias simulator", tiresias,
                         theirs="Tiresias"))
    return {"ours": ours, "published": {f"{v}/{p}": jq for (v, p), jq in published.items()}}


def contended(console: Console, quick: bool) -> dict[str, Any]:
    nodes = vc_nodes(TIRESIAS / "philly-helios" / "contended_nodes.csv")
    if quick:
        nodes = {vc: n for vc, n in nodes.items() if vc in ("11cb48", "103959", "ed69ec")}
    ours = run_vcs(nodes, list(CONTENDED_POLICIES), console)
    rows = []
    for mine, theirs in CONTENDED_POLICIES.items():
        published = TIRESIAS_CONTENDED.get(theirs) if theirs and not quick else None
        oracle = ours["srtf-preemptive"]["avg_jct_s"]
        note = (f"Tiresias {theirs}; " if theirs else "") + (
            f"{ours[mine]['avg_jct_s'] / oracle:.2f}x our oracle SRTF")
        rows.append(Row(mine, ours[mine]["avg_jct_s"], published, note))
    console.print(_table("contended Philly (11 VCs, contended_nodes.csv), average JCT", rows,
                         theirs="Tiresias"))
    return {"ours": ours, "tiresias": TIRESIAS_CONTENDED}


# ---------------------------------------------------------------------- peer traces
PEER_RUNS: tuple[tuple[str, str, str, str, str, float], ...] = (
    # (file, format, cluster, our policy, peer policy, peer avg JCT)
    ("tiresias/60_job.csv", "tiresias", "4x4xV100", "fifo-besteffort", "Tiresias fifo", 200.8),
    ("tiresias/60_job.csv", "tiresias", "4x4xV100", "srtf-preemptive", "Tiresias shortest",
     192.1),
    ("tiresias/60_job.csv", "tiresias", "4x4xV100", "las-preemptive", "Tiresias dlas-gpu",
     190.7),
    ("tiresias/gavel_cm_500_lam2400_s0.tiresias.csv", "tiresias", "12x4xV100",
     "fifo-besteffort", "Tiresias fifo", 55_277.0),
    ("tiresias/gavel_cm_500_lam2400_s0.tiresias.csv", "tiresias", "12x4xV100",
     "las-preemptive", "Tiresias dlas-gpu", 53_844.2),
    ("tiresias/gavel_cm_500_lam2400_s0.tiresias.csv", "tiresias", "12x4xV100",
     "srtf-preemptive", "Tiresias shortest-gpu", 53_471.6),
    ("tiresias/gavel_cm_500_lam2400_s0.tiresias.csv", "tiresias", "10x4xV100",
     "fifo-besteffort", "Tiresias fifo", 67_739.9),
    ("tiresias/gavel_cm_500_lam2400_s0.tiresias.csv", "tiresias", "10x4xV100",
     "las-preemptive", "Tiresias dlas-gpu", 58_760.2),
    ("tiresias/philly_103959_s0.tiresias.csv", "tiresias", "5x4xV100", "fifo-besteffort",
     "Tiresias fifo", 154_613.6),
    ("tiresias/philly_103959_s0.tiresias.csv", "tiresias", "5x4xV100", "las-preemptive",
     "Tiresias dlas-gpu", 95_985.8),
    ("tiresias/philly_103959_s0.tiresias.csv", "tiresias", "5x4xV100", "srtf-preemptive",
     "Tiresias shortest-gpu", 61_009.5),
    ("tiresias/philly_ed69ec_s0.tiresias.csv", "tiresias", "6x4xV100", "fifo-besteffort",
     "Tiresias fifo", 591_918.0),
    ("tiresias/philly_ed69ec_s0.tiresias.csv", "tiresias", "6x4xV100", "las-preemptive",
     "Tiresias dlas-gpu", 458_630.2),
    ("tiresias/philly_ed69ec_s0.tiresias.csv", "tiresias", "6x4xV100", "srtf-preemptive",
     "Tiresias shortest-gpu", 146_529.0),
    ("gavel/gavel_cm_500_lam2400_s0.trace", "gavel", "12x4xV100", "fifo-besteffort",
     "Gavel fifo", 56_179.5),
    ("gavel/gavel_cm_500_lam2400_s0.trace", "gavel", "9x4xV100+9x4xP100+9x4xK80",
     "fifo-besteffort", "Gavel fifo", 54_975.8),
    ("gavel/gavel_cm_500_lam2400_s0.trace", "gavel", "9x4xV100+9x4xP100+9x4xK80",
     "las-preemptive", "Gavel max_min_fairness", 72_330.3),
    ("gavel/gavel_cm_500_lam2400_s0.trace", "gavel", "9x4xV100+9x4xP100+9x4xK80",
     "default", "Gavel max_min_fairness_perf (its best)", 51_788.8),
    ("gavel/philly_103959_s0.trace", "gavel", "5x4xV100", "fifo-besteffort", "Gavel fifo",
     148_842.8),
    ("gavel/philly_103959_s0.trace", "gavel", "3x4xV100+3x4xP100+3x4xK80",
     "fifo-besteffort", "Gavel fifo", 96_908.9),
    ("gavel/philly_103959_s0.trace", "gavel", "3x4xV100+3x4xP100+3x4xK80",
     "default", "Gavel finish_time_fairness_perf (its best)", 54_645.2),
    ("gavel/philly_ed69ec_s0.trace", "gavel", "6x4xV100", "fifo-besteffort", "Gavel fifo",
     601_931.0),
    ("gavel/philly_ed69ec_s0.trace", "gavel", "6x4xV100", "las-preemptive",
     "Gavel max_min_fairness", 215_498.2),
)


def _one_peer(run: tuple[str, str, str, str, str, float]) -> dict[str, Any]:
    from suan.cluster.generate import cluster_from_shorthand
    from suan.sim.traces import read_trace

    path, fmt_name, cluster, policy, peer, published = run
    jobs = read_trace(SHARED / "peer-inputs" / path, fmt_name).jobs
    result = simulate(jobs, cluster_from_shorthand(cluster), policy, EVENT_DRIVEN)
    figures = summarise(result)
    figures.pop("queues")
    figures.update(trace=path, cluster=cluster, peer=peer, peer_avg_jct_s=published)
    return figures


def peers(console: Console, quick: bool) -> dict[str, Any]:
    runs = PEER_RUNS[:3] if quick else PEER_RUNS
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        figures = list(pool.map(_one_peer, runs))
    rows = [Row(f"{Path(f['trace']).stem} on {f['cluster']}: {f['policy']}", f["avg_jct_s"],
                f["peer_avg_jct_s"], f["peer"]) for f in figures]
    console.print(_table("peer traces, average JCT", rows, theirs="peer"))
    return {"runs": figures}


# ---------------------------------------------------------------------- dispatch
def reproduce(name: str, console: Console, *, json_path: Path | None = None,
              quick: bool = False) -> dict[str, Any]:
    """Run the named reproduction, print the comparison, optionally write JSON."""
    from suan.sim.pack import fgd_reproduction

    runs = {"helios-philly": helios, "philly-contended": contended, "peers": peers,
            "fgd-openb": fgd_reproduction}
    if name not in runs:
        raise SpecError("reproduce", [FieldProblem("name", f"unknown {name!r}",
                                                   ", ".join(runs))])
    if not SHARED.exists():
        raise SpecError(str(SHARED), [FieldProblem("", "shared data folder not found; set "
                                                   "SUAN_SHARED")])
    document = {"reproduction": name, "quick": quick, **runs[name](console, quick)}
    if json_path:
        write_json(json_path, document)
        console.print(f"wrote {json_path}")
    return document
