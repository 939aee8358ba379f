"""`suan schedule`: one dry-run scheduling cycle over a cluster file and a jobs file;
`suan policies`: the registered policies."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from suan.cli.render import render_decisions
from suan.cluster.model import Cluster
from suan.cluster.snapshot import Snapshot
from suan.jobs.queue import DEFAULT_QUEUE
from suan.jobs.spec import load_documents
from suan.sched import POLICIES, get_policy, schedule


def read_cluster(source: str) -> Cluster:
    """A cluster from a spec file, or from a shorthand such as `4x8xH100+2x8x910B`."""
    from suan.cluster.generate import cluster_from_shorthand
    from suan.cluster.spec import load_cluster

    if Path(source).exists() or source.endswith((".yaml", ".yml")):
        return load_cluster(source)
    return cluster_from_shorthand(source)


def schedule_command(
    cluster: str = typer.Option(..., "--cluster", help="Cluster spec YAML, or a shorthand "
                                "such as 4x8xH100+2x8x910B."),
    jobs: Path = typer.Option(..., "--jobs", help="Jobs (and queues) YAML."),
    policy: str = typer.Option("default", "--policy", help="Policy name (see `suan policies`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decisions as JSON."),
    now: float = typer.Option(0.0, "--now", help="The cycle's clock, in seconds."),
) -> None:
    """Run one dry-run scheduling cycle: what would be placed where, and why the rest waits."""
    chosen = get_policy(policy)
    the_cluster = read_cluster(cluster)
    pending, queues = load_documents(jobs)
    snapshot = Snapshot(the_cluster, (), tuple(queues) or (DEFAULT_QUEUE,), now)
    decisions = schedule(snapshot, pending, chosen)
    if as_json:
        typer.echo(json.dumps(decisions.to_dict(), indent=2))
        return
    console = Console()
    console.print(f"[bold]policy[/] {chosen.name}: {chosen.description}")
    console.print(f"[bold]cluster[/] {len(the_cluster)} nodes, "
                  + ", ".join(f"{n} {t}" for t, n in sorted(the_cluster.capacity().items())))
    render_decisions(decisions, console)


def policies_command(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the registered scheduling policies and their plugins."""
    described = [policy.describe() for policy in POLICIES]
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    table = Table(title="policies", title_justify="left")
    for column in ("name", "order", "placement", "fair share", "preemption", "backfill",
                   "description"):
        table.add_column(column)
    for item in described:
        table.add_row(str(item["name"]), str(item["order"]), str(item["placement"]),
                      "yes" if item["fair_share"] else "", _preemption_text(item),
                      str(item["backfill"] or ""), str(item["description"]))
    Console().print(table)


def _preemption_text(item: dict[str, object]) -> str:
    """'yes', plus the time sharing inside a queue when the policy has it."""
    if not item["preemption"]:
        return ""
    minimum = item.get("class_preemption_min_run_s")
    if not item.get("order_preemption") or not isinstance(minimum, int | float):
        return "yes"
    return f"yes; same queue after {minimum / 60:g} min"


def register(app: typer.Typer) -> None:
    """Add `schedule` and `policies` to `app`."""
    app.command("schedule")(schedule_command)
    app.command("policies")(policies_command)
