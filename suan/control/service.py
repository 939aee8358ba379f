"""What the control plane tells the service-class learner, through the feed the simulator uses
(`suan.sched.service_feed`: attained service over all runs; finished jobs observed, unfinished
ones censored).

A job row keeps the device-seconds of its runs that have ended (`JobRow.attained_s`, added by
`end_run` whenever a run stops, whatever stops it); the scheduler's Job of a waiting or running
job carries them as `attained_service_s` (`served_job`). A job that succeeded needed its
attained service at the end; the store's succeeded jobs, and its unfinished jobs that have
run, seed the history when the reconciler starts (`load_history`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.jobs import scheduler_job
from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.jobs.model import Job
from suan.sched.service import ServiceHistory

HOLDING = tuple(s.value for s in JobState if s.holds_devices)


def run_seconds(row: JobRow, now: float) -> float:
    """Device-seconds of the run that holds (or held, until `now`) the job's devices; 0 when
    it has none (`start_time` unset)."""
    if row.start_time is None:
        return 0.0
    return scheduler_job(row).devices * max(0.0, now - row.start_time)


def end_run(row: JobRow, now: float) -> None:
    """The job's current run ends at `now`: add its device-seconds to `attained_s` (call
    before `start_time` is cleared)."""
    row.attained_s = (row.attained_s or 0.0) + run_seconds(row, now)


def served_job(row: Any) -> Job:
    """The scheduler's Job of `row` (a JobRow or a row `scheduler_job` reads, with its
    `attained_s`), carrying the service of its ended runs."""
    return with_attained(scheduler_job(row), row.attained_s or 0.0)


def with_attained(job: Job, attained_s: float) -> Job:
    """`job` with `attained_s` as the service it attained before its current run."""
    return job if job.attained_service_s == attained_s else replace(
        job, attained_service_s=attained_s)


def device_seconds(row: JobRow) -> float | None:
    """The attained service of a finished job over all its runs, or None when it never ran.
    Rows stored before runs were counted (`attained_s` 0) give their last run's."""
    if row.start_time is None or row.end_time is None:
        return None
    return (row.attained_s or 0.0) or run_seconds(row, row.end_time)


def _finished(session: Session, limit: int) -> Iterator[tuple[str, float, str]]:
    query = (select(JobRow).where(JobRow.state == JobState.SUCCEEDED.value)
             .order_by(JobRow.end_time.desc()).limit(limit))
    for row in reversed(list(session.scalars(query))):
        used = device_seconds(row)
        if used is not None:
            yield row.queue, used, scheduler_job(row).series


def _unfinished(session: Session, now: float) -> dict[str, list[float]]:
    """Per queue, the service so far of the live jobs that have run: censored needs."""
    query = select(JobRow).where(
        JobRow.state.in_([s.value for s in JobState if not s.final]),
        (JobRow.attained_s > 0) | JobRow.state.in_(HOLDING),
    )
    found: dict[str, list[float]] = {}
    for row in session.scalars(query):
        running = run_seconds(row, now) if row.state in HOLDING else 0.0
        attained = (row.attained_s or 0.0) + running
        if attained > 0:
            found.setdefault(row.queue, []).append(attained)
    return found


def load_history(session: Session, now: float | None = None, keep: int = 500
                 ) -> ServiceHistory:
    """A history holding the most recent succeeded jobs of the store (up to `keep` a queue,
    read from the newest `keep` x 20 of all queues), learned with the live jobs that have run
    by `now` as censored needs (None: without them)."""
    history = ServiceHistory(keep=keep)
    unfinished = _unfinished(session, now) if now is not None else None
    history.extend(_finished(session, keep * 20), unfinished)
    return history
