"""`suan goodput`: where the jobs' time went, per job and for the cluster (device-time
weighted), and the lines `suan describe` prints about a job's goodput and checkpoint advice."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import typer

from suan.cli.jobs_cmd import Client
from suan.cli.listing import (
    Column,
    JsonOption,
    Listing,
    NoHeaderOption,
    OutputOption,
    chosen,
    show,
)
from suan.jobs.units import UnitError, parse_duration

SHOWN = ("queue_wait", "user_wait", "restart", "lost", "hang", "straggler", "checkpoint",
         "productive", "productive_unknown")
HEADERS = ("QUEUE", "OWN", "RESTART", "LOST", "HANG", "STRAGGLER", "CKPT", "PRODUCTIVE", "UNKNOWN")


def parse_since(text: str, now: float) -> float:
    """Seconds since the epoch from a duration back from now ("1d", "90m") or an ISO date
    ("2026-12-01", "2026-12-01T08:00")."""
    try:
        return now - parse_duration(text)
    except UnitError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration back from now (1d, 90m) nor an ISO date "
            "(2026-12-01, 2026-12-01T08:00)",
            param_hint="--since",
        ) from None


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def share(seconds: float, wall: float) -> str:
    return f"{100 * seconds / wall:.1f}%" if wall > 0 else "-"


def describe_lines(job: dict[str, Any]) -> list[str]:
    """The goodput and checkpoint lines of `suan describe` (none for an older server)."""
    lines = []
    figures = job.get("goodput")
    if figures:
        wall = figures["wall_s"]
        parts = ", ".join(
            f"{name.replace('_', ' ')} {seconds:.0f}s ({share(seconds, wall)})"
            for name, seconds in figures["breakdown"].items()
            if seconds > 0
        )
        lines.append(f"goodput: wall {wall:.0f}s = {parts or 'nothing yet'}")
        lines.append(
            f"goodput: scheduling {percent(figures['scheduling_goodput'])} x runtime "
            f"{percent(figures['runtime_goodput'])} x program (MFU) "
            f"{percent(figures['program_goodput'])} = {percent(figures['goodput'])}"
        )
        lines += [f"goodput: {note}" for note in figures["notes"]]
    if job.get("checkpoint"):
        lines.append(job["checkpoint"]["line"])
    return lines


GOODPUT_COLUMNS = tuple(
    Column(header)
    for header in ("JOB", "STATE", "DEVICES", "WALL", *HEADERS, "SCHED", "RUNTIME", "MFU")
)


def goodput_command(
    queue: str | None = typer.Option(None, "--queue", "-q", help="Only this queue's jobs."),
    since: str | None = typer.Option(
        None, "--since", help="Jobs live since then: a duration back from now (1d) or an ISO date."
    ),
    limit: int = typer.Option(1000, "--limit", min=1, max=10_000, help="At most this many jobs."),
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show where each job's wall time went, its goodput, and the cluster total (the last
    row, `total (N jobs)`)."""
    since_s = None if since is None else parse_since(since, time.time())
    with Client() as client:
        answer = client.goodput_all(queue, since_s, limit)
    rows: list[list[Any]] = []
    for row in answer["jobs"]:
        wall = row["wall_s"]
        rows.append([
            row["id"], row["state"], f"{row['devices']:g}", f"{wall:.0f}s",
            *(share(row["breakdown"][name], wall) for name in SHOWN),
            percent(row["scheduling_goodput"]), percent(row["runtime_goodput"]),
            percent(row["program_goodput"]),
        ])
    whole = answer["total"]
    device_s = whole["device_s"]
    rows.append([
        f"total ({whole['jobs']} jobs)", "", "", f"{device_s / 3600:.1f} dev-h",
        *(share(whole["breakdown_device_s"][name], device_s) for name in SHOWN),
        percent(whole["scheduling_goodput"]), percent(whole["runtime_goodput"]),
        percent(whole["program_goodput"]),
    ])
    show(Listing(GOODPUT_COLUMNS, rows, answer), chosen(output, as_json), no_header)


def register(app: typer.Typer) -> None:
    app.command("goodput")(goodput_command)
