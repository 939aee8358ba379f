"""Rich rendering of scheduler decisions for the terminal (job names and reasons are printed
as they are: escaped, never read as markup)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suan.sched.decisions import Decisions

MAX_ROWS = 40
"""Rows shown per table before the rest is summarised (all of it is in --json)."""


def _devices_text(decisions: Decisions, index: int) -> str:
    start = decisions.starts[index]
    per_node: dict[str, list[str]] = {}
    for replica in start.replicas:
        shown = _ranges(replica.devices)
        if replica.milli != 1000:
            shown += f"@{replica.milli / 1000:g}"
        per_node.setdefault(replica.node, []).append(shown)
    parts = [f"{node}[{' '.join(devs)}]" for node, devs in per_node.items()]
    if len(parts) > 4:
        return " ".join(parts[:4]) + f" +{len(parts) - 4} nodes"
    return " ".join(parts)


def _ranges(devices: tuple[int, ...]) -> str:
    """`0-3,6` for (0, 1, 2, 3, 6)."""
    parts: list[str] = []
    for device in devices:
        if parts and "-" not in parts[-1].split(",")[-1] and int(parts[-1]) + 1 == device:
            parts[-1] = f"{parts[-1]}-{device}"
        elif parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) + 1 == device:
            parts[-1] = f"{parts[-1].split('-')[0]}-{device}"
        else:
            parts.append(str(device))
    return ",".join(parts)


def render_decisions(decisions: Decisions, console: Console, title: str = "") -> None:
    """Print placements, preemptions and pending reasons as tables."""
    expand = console.is_terminal  # in a pipe a table is as wide as its rows, never wrapped
    placed = Table(title=f"{title}placed ({len(decisions.starts)})", title_justify="left",
                   expand=expand)
    placed.add_column("job", style="bold green", no_wrap=True)
    placed.add_column("type", no_wrap=True)
    placed.add_column("node[devices]")
    placed.add_column("why")
    for index, start in enumerate(decisions.starts[:MAX_ROWS]):
        types = ", ".join(sorted({a for a in start.accelerators if a}))
        why = start.why + (f" (after preempting {', '.join(start.after_preempting)})"
                           if start.after_preempting else "")
        placed.add_row(*map(escape, (start.job.name, types, _devices_text(decisions, index), why)))
    _more(placed, len(decisions.starts))
    console.print(placed)
    if decisions.preemptions:
        preempted = Table(title=f"preempted ({len(decisions.preemptions)})", title_justify="left",
                          expand=expand)
        preempted.add_column("job", style="bold yellow", no_wrap=True)
        preempted.add_column("for", no_wrap=True)
        preempted.add_column("reason")
        for victim in decisions.preemptions[:MAX_ROWS]:
            preempted.add_row(*map(escape, (victim.job, victim.for_job, victim.reason)))
        console.print(preempted)
    waiting = Table(title=f"pending ({len(decisions.pending)})", title_justify="left",
                    expand=expand)
    waiting.add_column("job", style="bold red", no_wrap=True)
    waiting.add_column("code", no_wrap=True)
    waiting.add_column("why it waits")
    for wait in decisions.pending[:MAX_ROWS]:
        waiting.add_row(*map(escape, (wait.job, str(wait.code), wait.reason)))
    _more(waiting, len(decisions.pending))
    console.print(waiting)


def _more(table: Table, total: int) -> None:
    if total > MAX_ROWS:
        table.add_row(f"... {total - MAX_ROWS} more", "", "", "")
