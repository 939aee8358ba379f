"""`suan nodes`: list nodes with the engine's and the operator's word on them; a cluster admin
cordons, uncordons and drains them.

    suan nodes                                   # the table (-o json: the API's answer)
    suan nodes cordon n4 --reason "fan noise"    # no new work on n4
    suan nodes drain n4 --reason "ECC" --grace 10m
    suan nodes uncordon n4
"""

from __future__ import annotations

from typing import Any

import typer

from suan.cli.listing import (
    Column,
    JsonOption,
    Listing,
    NoHeaderOption,
    OutputOption,
    chosen,
    show,
)

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


NODE_COLUMNS = (
    Column("NODE"), Column("ENGINE"), Column("TYPE"), Column("DEVICES"), Column("FREE"),
    Column("SIMULATED"), Column("HEALTH"), Column("ENGINE HEALTH"), Column("OPERATOR"),
    Column("JOBS"), Column("REASON"),
)


def _node_row(node: dict[str, Any]) -> list[Any]:
    return [
        node["name"],
        node.get("engine", ""),
        node["accelerator"] or "cpu",
        node["devices"],
        node["free"],
        "yes" if node["simulated"] else "no",
        node["health"],
        node.get("engine_health", node["health"]),
        _operator(node),
        _jobs(node),
        node.get("health_reason", ""),
    ]


@nodes.callback()
def nodes_list(
    context: typer.Context,
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
) -> None:
    """List nodes: devices, which jobs use them, health (merged, and the engine's own), the
    operator's cordon or drain, and the reasons."""
    if context.invoked_subcommand is not None:
        return
    with _client() as client:
        listed = client.nodes()
    rows = [_node_row(node) for node in listed]
    show(Listing(NODE_COLUMNS, rows, listed), chosen(output, as_json), no_header)


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
