"""`suan snapshot export`: the control plane's next scheduling cycle, as a state file that
`suan schedule --state FILE` replays offline (docs/schedule-state.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

snapshot = typer.Typer(
    help="The scheduler's inputs on the control plane, for offline dry runs.",
    no_args_is_help=True,
)


@snapshot.command("export")
def snapshot_export(
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the state here (JSON); "
                                    "default: stdout."),
) -> None:
    """Export the inputs of the reconciler's next scheduling cycle (cluster, running jobs and
    their placements, pending jobs with submit times, queues, service classes, policy, clock)
    and the decisions it made from them. Cluster admins only."""
    from suan.client import Client

    with Client() as client:
        document = client.snapshot()
    text = json.dumps(document, indent=1) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    decisions = document.get("decisions") or {}
    typer.echo(
        f"wrote {out}: t={document['now']}, {len(document['running'])} running, "
        f"{len(document['jobs']) - len(document['running'])} pending, "
        f"{len(decisions.get('placements', []))} placed this cycle"
        + ("" if document.get("decisions") is not None else " (no cycle ran: "
           + str(document.get("exported", {}).get("note", "")) + ")"),
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add `snapshot` to `app`."""
    app.add_typer(snapshot, name="snapshot")
