"""`suan jobs`'s compact view of arrays (one line per array, its members counted per state)
and `suan describe`'s lines on arrays and dependencies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

STATE_ORDER = ("running", "scheduled", "restarting", "preempted", "pending", "succeeded",
               "failed", "cancelled")


def counts_text(states: Sequence[str]) -> str:
    """"2 running, 6 pending": how many members are in each state, busiest first."""
    known = [state for state in STATE_ORDER if state in states]
    others = sorted(set(states) - set(STATE_ORDER))
    return ", ".join(f"{states.count(state)} {state}" for state in (*known, *others))


def compact_rows(
    jobs: list[dict[str, Any]], row_of: Callable[[dict[str, Any]], list[Any]]
) -> list[list[Any]]:
    """One row per job outside an array (`row_of`'s) and one per array, at the place of its
    first member listed: the array id with its size, and its members' states counted in
    the STATE column. Counts are of the members on this page."""
    members: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        if job.get("array_id"):
            members.setdefault(job["array_id"], []).append(job)
    rows: list[list[Any]] = []
    shown: set[str] = set()
    for job in jobs:
        array_id = job.get("array_id")
        if not array_id:
            rows.append(row_of(job))
        elif array_id not in shown:
            shown.add(array_id)
            rows.append(_array_row(array_id, members[array_id], row_of))
    return rows


def _array_row(array_id: str, members: list[dict[str, Any]],
               row_of: Callable[[dict[str, Any]], list[Any]]) -> list[Any]:
    first = min(members, key=lambda job: job.get("array_index") or 0)
    row = row_of(first)
    row[0] = f"{array_id} [{first.get('array_count') or len(members)}]"
    row[3] = counts_text([job["state"] for job in members])
    waiting = [job for job in members if job["state"] == "pending" and job.get("reason")]
    row[-1] = waiting[0]["reason"] if waiting else ""
    return row


def batch_lines(job: dict[str, Any]) -> list[str]:
    """`suan describe`'s lines on a job's array and the dependencies it still waits for."""
    lines = []
    if job.get("array_id"):
        lines.append(f"array: {job['array_id']}, member {job['array_index']} of "
                     f"{job['array_count']}")
    waits = job.get("waits_for") or []
    if waits:
        lines.append("waits for: " + ", ".join(f"{w['kind']}:{w['job']}" for w in waits))
    return lines


def array_lines(view: dict[str, Any]) -> list[str]:
    """`suan describe ARRAY-ID`: the array, its counts per state and one line per member."""
    limit = f", at most {view['limit']} at once" if view.get("limit") else ""
    lines = [
        f"{view['id']}  array of {view['count']}{limit}  user {view['user']}  "
        f"queue {view['queue']}",
        "states: " + counts_text([member["state"] for member in view["members"]]),
    ]
    for member in view["members"]:
        reason = f"  {member['reason']}" if member["state"] == "pending" else ""
        lines.append(f"  {member['id']}  {member['state']}{reason}")
    return lines
