"""`suan sim replay`: read a trace and a cluster, replay under each policy, report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from suan.cluster.model import Cluster
from suan.errors import FieldProblem, SpecError
from suan.sim.failures import DAY, FailureModel
from suan.sim.report import print_report, write_jobs_csv, write_json
from suan.sim.runner import run_policies
from suan.sim.runtime import RuntimeModel, Slowdown
from suan.sim.simulator import SimConfig
from suan.sim.traces import read_philly, read_trace


@dataclass
class ReplayOptions:
    """What `suan sim replay` was asked for."""

    trace: Path
    cluster: str
    policies: list[str]
    fmt: str = "csv"
    tick: float = 300.0
    checkpoint: float = 0.0
    overhead: float = 0.0
    slowdown: str = ""
    node_mtbf_days: float = 0.0
    repair_hours: float = 4.0
    seed: int = 0
    vcs: set[str] = field(default_factory=set)
    limit: int = 0
    oracle_estimates: bool = False
    skip_bad: bool = False
    queue_depth: int = 0


def load_cluster_arg(source: str) -> Cluster:
    """A cluster from a spec YAML, an openb node-list CSV, or a shorthand."""
    from suan.cluster.generate import cluster_from_shorthand
    from suan.cluster.spec import load_cluster
    from suan.cluster.traces import read_openb_nodes

    if source.endswith(".csv"):
        return read_openb_nodes(source)
    if Path(source).exists() or source.endswith((".yaml", ".yml")):
        return load_cluster(source)
    return cluster_from_shorthand(source)


def config_from(options: ReplayOptions) -> SimConfig:
    try:
        slowdown = Slowdown.parse(options.slowdown)
    except ValueError as exc:
        raise SpecError("--slowdown", [FieldProblem("slowdown", str(exc),
                                                    "domain=X,node=Y,rack=Z")]) from None
    runtime = RuntimeModel(
        slowdown=slowdown, restart_overhead_s=options.overhead,
        checkpoint_interval_s=None if options.checkpoint < 0 else options.checkpoint,
    )
    failures = None
    if options.node_mtbf_days > 0:
        failures = FailureModel(options.node_mtbf_days * DAY, repair_s=options.repair_hours
                                * 3600, seed=options.seed)
    return SimConfig(tick_s=options.tick or None, runtime=runtime, failures=failures,
                     oracle_estimates=options.oracle_estimates,
                     queue_depth=options.queue_depth or None)


def replay(options: ReplayOptions, console: Console, *, json_path: Path | None = None,
           plots: Path | None = None, jobs_csv: Path | None = None) -> list[dict[str, Any]]:
    """Run the replay and print (and optionally write) its report; return the figures."""
    from suan.sched import get_policy

    for name in options.policies:
        get_policy(name)
    if options.fmt == "philly":
        trace = read_philly(options.trace, vcs=options.vcs or None, skip_bad=options.skip_bad)
    else:
        trace = read_trace(options.trace, options.fmt, skip_bad=options.skip_bad)
    jobs = trace.jobs[: options.limit] if options.limit else trace.jobs
    cluster = load_cluster_arg(options.cluster)
    capacity = ", ".join(f"{n} {t}" for t, n in sorted(cluster.capacity().items()))
    console.print(f"[bold]trace[/] {escape(str(trace.source))}: {len(jobs):,} jobs"
                  + (f" ({trace.skipped} bad rows skipped)" if trace.skipped else ""))
    console.print(f"[bold]cluster[/] {len(cluster)} nodes, {capacity}")
    results, figures = run_policies(jobs, cluster, options.policies, config_from(options),
                                    console=console)
    print_report(figures, console, f"replay of {Path(trace.source).name}")
    if json_path:
        write_json(json_path, {"trace": trace.source, "jobs": len(jobs),
                               "skipped_rows": trace.skipped, "cluster": options.cluster,
                               "policies": {f["policy"]: f for f in figures}})
        console.print(f"wrote {json_path}", markup=False)
    if jobs_csv:
        write_jobs_csv(jobs_csv, results)
        console.print(f"wrote {jobs_csv}", markup=False)
    if plots:
        from suan.sim.plots import replay_plots

        for path in replay_plots(results, plots):
            console.print(f"wrote {path}", markup=False)
    return figures
