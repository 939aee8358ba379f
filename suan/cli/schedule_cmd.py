"""`suan schedule`: one dry-run scheduling cycle over a cluster file and a jobs file, or a
scheduler state file (docs/schedule-state.md);
`suan policies`: the registered policies."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape

from suan.cli.files import check_text_file, text_file, text_file_or_name
from suan.cli.listing import (
    Column,
    JsonOption,
    Listing,
    NoHeaderOption,
    OutputOption,
    output_console,
    show,
)
from suan.cli.listing import chosen as chosen_output
from suan.cli.render import render_decisions
from suan.cluster.model import Cluster
from suan.cluster.snapshot import Snapshot
from suan.cluster.state import load_state
from suan.errors import SuanError
from suan.jobs.queue import DEFAULT_QUEUE
from suan.jobs.spec import load_documents
from suan.plan.jobs import advise_all, cluster_types
from suan.sched import POLICIES, decide, get_policy


def read_cluster(source: str) -> Cluster:
    """A cluster from a spec file, or from a shorthand such as `4x8xH100+2x8x910B`."""
    from suan.cluster.generate import cluster_from_shorthand
    from suan.cluster.spec import load_cluster

    if Path(source).exists() or source.endswith((".yaml", ".yml")):
        check_text_file(source)
        return load_cluster(source)
    return cluster_from_shorthand(source)


def schedule_command(
    cluster: str | None = typer.Option(None, "--cluster", help="Cluster spec YAML, or a "
                                       "shorthand such as 4x8xH100+2x8x910B (optional with "
                                       "--state, whose cluster it replaces).",
                                       callback=text_file_or_name),
    jobs: Path | None = typer.Option(None, "--jobs", help="Jobs (and queues) YAML (optional "
                                     "with --state, whose jobs it adds to).",
                                     callback=text_file, readable=False),
    state: Path | None = typer.Option(None, "--state", help="A scheduler state file (JSON or "
                                      "YAML, docs/schedule-state.md): running jobs, node "
                                      "health, submit times, service classes, the clock; "
                                      "`suan snapshot export` writes one.",
                                      callback=text_file, readable=False),
    policy: str | None = typer.Option(None, "--policy", help="Policy name (see `suan "
                                      "policies`); default: the state's, else default."),
    as_json: bool = typer.Option(False, "--json", help="Print the decisions as JSON."),
    now: float | None = typer.Option(None, "--now", help="The cycle's clock, in seconds "
                                     "(default: the state's, else 0)."),
) -> None:
    """Run one dry-run scheduling cycle: what would be placed where, and why the rest waits.

    Without --state the cycle starts from an empty cluster at --now; with it, from the state
    (a control plane's export replays its reconciler's cycle exactly)."""
    if state is None and (cluster is None or jobs is None):
        raise SuanError("give --cluster and --jobs, or --state (with either or both)")
    the_cluster = read_cluster(cluster) if cluster is not None else None
    pending, queues = load_documents(jobs) if jobs is not None else ([], [])
    if state is None:
        assert the_cluster is not None
        snapshot = Snapshot(the_cluster, (), tuple(queues) or (DEFAULT_QUEUE,), now or 0.0)
        chosen = get_policy(policy or "default")
    else:
        loaded = load_state(state, cluster=the_cluster, jobs=pending, queues=queues)
        snapshot, pending = loaded.snapshot, list(loaded.pending)
        if now is not None:
            snapshot = replace(snapshot, now=now)
        chosen = get_policy(policy or loaded.policy or "default")
    pending = advise_all(pending, cluster_types(snapshot.cluster))
    decisions = decide(snapshot, pending, chosen)
    if as_json:
        typer.echo(json.dumps(decisions.to_dict(), indent=2))
        return
    console = output_console()
    console.print(f"[bold]policy[/] {escape(chosen.name)}: {escape(chosen.description)}")
    console.print(f"[bold]cluster[/] {len(snapshot.cluster)} nodes, "
                  + ", ".join(f"{n} {t}" for t, n in sorted(snapshot.cluster.capacity().items())))
    if state is not None:
        console.print(f"[bold]state[/] t={snapshot.now:g}, {len(snapshot.running)} running, "
                      f"{len(pending)} pending")
    render_decisions(decisions, console)


POLICY_COLUMNS = tuple(
    Column(header)
    for header in ("NAME", "PHASES", "ORDER", "PLACEMENT", "FAIR SHARE", "PREEMPTION",
                   "WHEN BLOCKED", "DESCRIPTION")
)


def policies_command(
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
) -> None:
    """List the registered scheduling policies and their plugins."""
    described = [policy.describe() for policy in POLICIES]
    rows = [
        [
            item["name"], " > ".join(map(str, item["phases"])),  # type: ignore[call-overload]
            _order_text(item), item["placement"], "yes" if item["fair_share"] else "",
            _preemption_text(item), item["when_blocked"], item["description"],
        ]
        for item in described
    ]
    show(Listing(POLICY_COLUMNS, rows, described), chosen_output(output, as_json), no_header)


def _order_text(item: dict[str, object]) -> str:
    """The order plugin, and the rank it compares when the policy has one."""
    return f"{item['order']} (rank: {item['rank']})" if item["rank"] else str(item["order"])


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
