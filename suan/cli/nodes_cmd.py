"""`suan nodes`: list nodes with the engine's and the operator's word on them; a cluster admin
cordons, uncordons and drains them.

    suan nodes                                   # the table (--json: the API's answer)
    suan nodes cordon n4 --reason "fan noise"    # no new work on n4
    suan nodes drain n4 --reason "ECC" --grace 10m
    suan nodes uncordon n4
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

nodes = typer.Typer(
    help="Nodes: list them; cordon, uncordon or drain one (cluster admins).",
    invoke_without_command=True,
)
REASON_HELP = "Why (shown with the node and on every job it affects)."
GRACE_HELP = (
    'How long the node\'s gangs have before they are stopped and requeued: seconds or a '
    'duration ("90s", "10m", "1h"). Default: ten minutes.'
)


def _client():  # type: ignore[no-untyped-def]
    from suan.client import Client

    return Client()


def _operator(node: dict[str, Any]) -> str:
    """The OPERATOR column: the override's state and who set it."""
    override = node.get("operator")
    if not override:
        return ""
    return f"{override['state']} by {override['by']}"


def _jobs(node: dict[str, Any]) -> str:
    named = sorted(set(node["used"].values()) - {"hidden"})
    hidden = node.get("hidden", 0)
    return ", ".join(named + ([f"{hidden} devices of others"] if hidden else []))


def _print_table(listed: list[dict[str, Any]]) -> None:
    table = Table(box=None, header_style="bold")
    columns = ("NODE", "ENGINE", "TYPE", "DEVICES", "FREE", "SIMULATED", "HEALTH",
               "ENGINE HEALTH", "OPERATOR", "JOBS", "REASON")
    for column in columns:
        table.add_column(column)
    for node in listed:
        table.add_row(
            node["name"],
            node.get("engine", ""),
            node["accelerator"] or "cpu",
            str(node["devices"]),
            str(node["free"]),
            "yes" if node["simulated"] else "no",
            node["health"],
            node.get("engine_health", node["health"]),
            _operator(node),
            _jobs(node),
            node.get("health_reason", ""),
        )
    Console().print(table)


@nodes.callback()
def nodes_list(
    context: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List nodes: devices, which jobs use them, health (merged, and the engine's own), the
    operator's cordon or drain, and the reasons."""
    if context.invoked_subcommand is not None:
        return
    with _client() as client:
        listed = client.nodes()
    if as_json:
        typer.echo(json.dumps(listed, indent=2))
        return
    _print_table(listed)


def _said(answer: dict[str, Any]) -> None:
    override = answer.get("operator")
    if override is None:
        typer.echo(f"node {answer['name']}: no operator cordon or drain")
        return
    typer.echo(f"node {answer['name']}: {override['state']} ({override['words']})")


@nodes.command("cordon")
def nodes_cordon(
    node: str = typer.Argument(..., help="Node name."),
    reason: str = typer.Option(..., "--reason", help=REASON_HELP),
) -> None:
    """No new work on NODE; the gangs running there go on."""
    with _client() as client:
        _said(client.cordon(node, reason))


@nodes.command("uncordon")
def nodes_uncordon(node: str = typer.Argument(..., help="Node name.")) -> None:
    """Lift the operator's cordon or drain of NODE."""
    with _client() as client:
        _said(client.uncordon(node))


@nodes.command("drain")
def nodes_drain(
    node: str = typer.Argument(..., help="Node name."),
    reason: str = typer.Option(..., "--reason", help=REASON_HELP),
    grace: str | None = typer.Option(None, "--grace", help=GRACE_HELP),
) -> None:
    """Cordon NODE; after the grace period stop every gang on it and requeue it (restarted
    from its last checkpoint, not counted as a failure)."""
    with _client() as client:
        _said(client.drain(node, reason, grace))


def register(app: typer.Typer) -> None:
    app.add_typer(nodes, name="nodes")
