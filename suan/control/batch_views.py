"""What the API says of dependencies and arrays: the fields of a job's summary, an array's
view (its members and how many are in each state), and the cancel of a whole array."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.control.store import add_event


def batch_summary(row: JobRow) -> dict[str, Any]:
    """A job's array (`array_id`, `array_index`, `array_count`; null outside an array) and
    the dependencies it still waits for (`waits_for`: [{kind, job}], empty once met)."""
    pairs = json.loads(row.waits_for) if row.waits_for else []
    return {
        "array_id": row.array_id,
        "array_index": row.array_index,
        "array_count": row.array_count,
        "waits_for": [{"kind": kind, "job": job} for kind, job in pairs],
    }


def array_members(session: Session, array_id: str) -> list[JobRow]:
    """The members of an array by index ([] when `array_id` is no array)."""
    query = select(JobRow).where(JobRow.array_id == array_id).order_by(JobRow.array_index)
    return list(session.scalars(query))


def state_counts(states: list[str]) -> dict[str, int]:
    """How many members are in each state, in the lifecycle's order of states."""
    counted = Counter(states)
    return {state.value: counted[state.value] for state in JobState if counted[state.value]}


def array_view(array_id: str, members: list[JobRow]) -> dict[str, Any]:
    """`GET /v1/jobs/{array id}`: the array, its throttle, counts per state and members."""
    from suan.control.views import job_summary

    first = members[0]
    return {
        "id": array_id,
        "array": True,
        "name": first.name,
        "user": first.user,
        "queue": first.queue,
        "count": len(members),
        "limit": first.array_limit,
        "states": state_counts([member.state for member in members]),
        "members": [job_summary(member) for member in members],
    }


def request_cancel(session: Session, rows: list[JobRow], by: str) -> list[str]:
    """Mark every row that has not ended for cancelling; the ids marked."""
    asked = []
    for row in rows:
        if JobState(row.state).final:
            continue
        if not row.cancel_requested:
            row.cancel_requested = True
            add_event(session, row.id, "cancel-requested", f"cancel requested by {by}")
        asked.append(row.id)
    return asked
