"""Holds and requeue: a user keeps a waiting job from the scheduler, or sends a running one
back to the queue.

- `hold`: a waiting job (pending, preempted or restarting) is never scheduled until it is
  released; its reason says who holds it (code `held`). Events `held` / `released` (the
  goodput breakdown counts the time between them as the user's own wait).
- `requeue`: a job holding devices is stopped (SIGTERM, grace, SIGKILL, by the reconciler)
  and goes back to pending, restarting from its checkpoint like any relaunch; it is not
  counted against `maxRestarts` (the run did not fail) and gets its whole time limit again.

Each function changes the row and writes its event; the caller commits and wakes the
reconciler. A request that does not fit the job's state raises `StateConflict`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.control.store import add_event
from suan.errors import SuanError
from suan.goodput.store import HOLD, RELEASE
from suan.sched.decisions import WaitCode

REQUEUE_MARK = "requeued by "
"""How a requeue's stop reason begins (`requeued by alice`)."""


class StateConflict(SuanError):
    """The job's state does not allow the request (an HTTP 409)."""


def hold(session: Session, row: JobRow, user: str) -> None:
    """Hold the waiting job `row` for `user` (again: no change)."""
    if not JobState(row.state).waiting or row.cancel_requested:
        raise StateConflict(f"job {row.id} is {_state(row)}: only a waiting job can be held")
    if row.held_by:
        return
    row.held_by = user
    row.reason, row.reason_code = f"held by {user}", WaitCode.HELD.value
    add_event(session, row.id, HOLD, f"held by {user}")


def release(session: Session, row: JobRow, user: str) -> None:
    """Release the held job `row`: it waits for the scheduler again."""
    if not row.held_by:
        raise StateConflict(f"job {row.id} is {_state(row)} and not held")
    row.held_by = ""
    row.reason, row.reason_code = f"released by {user}; waiting for the scheduler", ""
    add_event(session, row.id, RELEASE, f"released by {user}")


def requeue(session: Session, row: JobRow, user: str) -> None:
    """Ask the reconciler to stop the run of `row` and put the job back in the queue."""
    if not JobState(row.state).holds_devices or row.cancel_requested:
        raise StateConflict(
            f"job {row.id} is {_state(row)}: only a scheduled or running job can be requeued"
        )
    if row.stop_target is not None:
        raise StateConflict(
            f"job {row.id} is already stopping ({row.stop_reason or row.stop_target})"
        )
    row.stop_target = JobState.PENDING.value
    row.stop_reason = f"{REQUEUE_MARK}{user}"
    add_event(session, row.id, "requeue-requested", f"requeue requested by {user}")


def _state(row: JobRow) -> str:
    return f"{row.state}, cancel requested" if row.cancel_requested else row.state
