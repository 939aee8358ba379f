"""`suan sim reproduce`: published setups, run through our simulator, printed beside the
published numbers. The data files live in the shared data folder (`suan.data`: `SUAN_SHARED`,
else `../shared`); the peers' figures come from `suan.sim.published`; docs/simulator.md
explains each setup.

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

from suan.data import require_shared, shared_dir
from suan.errors import FieldProblem, SpecError
from suan.sim.metrics import summarise
from suan.sim.published import published as peer_figure
from suan.sim.report import fmt, write_json
from suan.sim.simulator import SimConfig, simulate

SHARED = shared_dir()
"""The shared data folder as this process started (for callers that import it)."""
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
PER_VC_TRACE = "tiresias/philly-helios"
"""The Tiresias per-VC files of the Helios jobs, which the Tiresias figures were run on."""


def tiresias_per_vc(policy: str, nodes_file: str) -> float:
    """The Tiresias simulator's average JCT over all VCs under `policy`, with the VCs' node
    counts of `nodes_file`."""
    return peer_figure("Tiresias", policy, PER_VC_TRACE, nodes_file).value


def philly(name: str) -> Path:
    """File `name` of the shared Philly folder; SpecError naming SUAN_SHARED when missing."""
    return require_shared("traces", "philly", name)


def peer_input(path: str) -> Path:
    """File `path` (a/b) of the shared peer inputs; SpecError naming SUAN_SHARED when missing."""
    return require_shared("peer-inputs", *path.split("/"))


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
    jobs = read_philly(philly("philly_jobs_sorted.csv.gz"), vcs={vc}, start=HELIOS_WINDOW[0],
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
    with philly("helios_sc21_philly_published_results.csv").open(newline="") as handle:
        return {(r["vc"], r["policy"]): (float(r["avg_jct_s"]), float(r["avg_queue_s"]))
                for r in csv.DictReader(handle)}


def helios(console: Console, quick: bool) -> dict[str, Any]:
    nodes = vc_nodes(philly("philly_vc_nodes_helios.csv"))
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
    tiresias = [Row(f"Tiresias {p} vs ours", ours[m]["avg_jct_s"],
                    None if quick else tiresias_per_vc(p, "philly_vc_nodes_helios.csv"))
                for m, p in (("fifo", "fifo"), ("srtf-preemptive", "shortest-gpu"))]
    console.print(_table("the same jobs and nodes, Tiresias simulator", tiresias,
                         theirs="Tiresias"))
    return {"ours": ours, "published": {f"{v}/{p}": jq for (v, p), jq in published.items()}}


def contended(console: Console, quick: bool) -> dict[str, Any]:
    nodes = vc_nodes(peer_input(f"{PER_VC_TRACE}/contended_nodes.csv"))
    if quick:
        nodes = {vc: n for vc, n in nodes.items() if vc in ("11cb48", "103959", "ed69ec")}
    ours = run_vcs(nodes, list(CONTENDED_POLICIES), console)
    figures = {theirs: tiresias_per_vc(theirs, "contended_nodes.csv")
               for theirs in CONTENDED_POLICIES.values() if theirs}
    rows = []
    for mine, theirs in CONTENDED_POLICIES.items():
        published = figures[theirs] if theirs and not quick else None
        oracle = ours["srtf-preemptive"]["avg_jct_s"]
        note = (f"Tiresias {theirs}; " if theirs else "") + (
            f"{ours[mine]['avg_jct_s'] / oracle:.2f}x our oracle SRTF")
        rows.append(Row(mine, ours[mine]["avg_jct_s"], published, note))
    console.print(_table("contended Philly (11 VCs, contended_nodes.csv), average JCT", rows,
                         theirs="Tiresias"))
    return {"ours": ours, "tiresias": figures}


# ---------------------------------------------------------------------- peer traces
PeerRun = tuple[str, str, str, str, str, str]
"""(trace under peer-inputs/, its format, cluster, our policy, peer, the peer's policy)."""
_CM = "tiresias/gavel_cm_500_lam2400_s0.tiresias.csv"
_GAVEL_CM = "gavel/gavel_cm_500_lam2400_s0.trace"
_HETERO_CM = "9x4xV100+9x4xP100+9x4xK80"
_HETERO_103959 = "3x4xV100+3x4xP100+3x4xK80"
PEER_RUNS: tuple[PeerRun, ...] = (
    ("tiresias/60_job.csv", "tiresias", "4x4xV100", "fifo-besteffort", "Tiresias", "fifo"),
    ("tiresias/60_job.csv", "tiresias", "4x4xV100", "srtf-preemptive", "Tiresias", "shortest"),
    ("tiresias/60_job.csv", "tiresias", "4x4xV100", "las-preemptive", "Tiresias", "dlas-gpu"),
    (_CM, "tiresias", "12x4xV100", "fifo-besteffort", "Tiresias", "fifo"),
    (_CM, "tiresias", "12x4xV100", "las-preemptive", "Tiresias", "dlas-gpu"),
    (_CM, "tiresias", "12x4xV100", "srtf-preemptive", "Tiresias", "shortest-gpu"),
    (_CM, "tiresias", "10x4xV100", "fifo-besteffort", "Tiresias", "fifo"),
    (_CM, "tiresias", "10x4xV100", "las-preemptive", "Tiresias", "dlas-gpu"),
    ("tiresias/philly_103959_s0.tiresias.csv", "tiresias", "5x4xV100", "fifo-besteffort",
     "Tiresias", "fifo"),
    ("tiresias/philly_103959_s0.tiresias.csv", "tiresias", "5x4xV100", "las-preemptive",
     "Tiresias", "dlas-gpu"),
    ("tiresias/philly_103959_s0.tiresias.csv", "tiresias", "5x4xV100", "srtf-preemptive",
     "Tiresias", "shortest-gpu"),
    ("tiresias/philly_ed69ec_s0.tiresias.csv", "tiresias", "6x4xV100", "fifo-besteffort",
     "Tiresias", "fifo"),
    ("tiresias/philly_ed69ec_s0.tiresias.csv", "tiresias", "6x4xV100", "las-preemptive",
     "Tiresias", "dlas-gpu"),
    ("tiresias/philly_ed69ec_s0.tiresias.csv", "tiresias", "6x4xV100", "srtf-preemptive",
     "Tiresias", "shortest-gpu"),
    (_GAVEL_CM, "gavel", "12x4xV100", "fifo-besteffort", "Gavel", "fifo"),
    (_GAVEL_CM, "gavel", _HETERO_CM, "fifo-besteffort", "Gavel", "fifo"),
    (_GAVEL_CM, "gavel", _HETERO_CM, "las-preemptive", "Gavel", "max_min_fairness"),
    (_GAVEL_CM, "gavel", _HETERO_CM, "default", "Gavel", "max_min_fairness_perf"),
    ("gavel/philly_103959_s0.trace", "gavel", "5x4xV100", "fifo-besteffort", "Gavel", "fifo"),
    ("gavel/philly_103959_s0.trace", "gavel", _HETERO_103959, "fifo-besteffort", "Gavel",
     "fifo"),
    ("gavel/philly_103959_s0.trace", "gavel", _HETERO_103959, "default", "Gavel",
     "finish_time_fairness_perf"),
    ("gavel/philly_ed69ec_s0.trace", "gavel", "6x4xV100", "fifo-besteffort", "Gavel", "fifo"),
    ("gavel/philly_ed69ec_s0.trace", "gavel", "6x4xV100", "las-preemptive", "Gavel",
     "max_min_fairness"),
)
"""Each peer trace on a cluster under one of our policies, beside a peer's policy. On Gavel's
heterogeneous clusters `default` is set beside Gavel's best heterogeneity-aware policy there."""


def _one_peer(run: PeerRun) -> dict[str, Any]:
    from suan.cluster.generate import cluster_from_shorthand
    from suan.sim.traces import read_trace

    path, fmt_name, cluster, policy, peer, peer_policy = run
    theirs = peer_figure(peer, peer_policy, path, cluster)
    jobs = read_trace(peer_input(path), fmt_name).jobs
    result = simulate(jobs, cluster_from_shorthand(cluster), policy, EVENT_DRIVEN)
    figures = summarise(result)
    figures.pop("queues")
    figures.update(trace=path, cluster=cluster, peer=f"{peer} {peer_policy}",
                   peer_avg_jct_s=theirs.value, peer_source=theirs.source)
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
    require_shared()
    document = {"reproduction": name, "quick": quick, **runs[name](console, quick)}
    if json_path:
        write_json(json_path, document)
        console.print(f"wrote {json_path}", markup=False)
    return document
