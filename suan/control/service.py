"""What the control plane learns from finished jobs for the scheduler's service classes.

A job that succeeded needed, at least, its devices times the run time of its last attempt
(earlier attempts are not recorded). Per queue, and per series for jobs that name one
(`spec.series`), these device-seconds feed `suan.sched.service.ServiceHistory`, whose classes go
into every snapshot (`Snapshot.service`), so that the `default` policy orders and preempts by
them as it does in the simulator.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.jobs import scheduler_job
from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.sched.service import ServiceHistory


def device_seconds(row: JobRow) -> float | None:
    """Device-seconds of a finished job's last attempt, or None when it never ran."""
    if row.start_time is None or row.end_time is None:
        return None
    return scheduler_job(row).devices * max(0.0, row.end_time - row.start_time)


def _finished(session: Session, limit: int) -> Iterator[tuple[str, float, str]]:
    query = (select(JobRow).where(JobRow.state == JobState.SUCCEEDED.value)
             .order_by(JobRow.end_time.desc()).limit(limit))
    for row in reversed(list(session.scalars(query))):
        used = device_seconds(row)
        if used is not None:
            yield row.queue, used, scheduler_job(row).series


def load_history(session: Session, keep: int = 500) -> ServiceHistory:
    """A history holding the most recent succeeded jobs of the store (up to `keep` a queue,
    read from the newest `keep` x 20 of all queues)."""
    history = ServiceHistory(keep=keep)
    history.extend(_finished(session, keep * 20))
    return history
