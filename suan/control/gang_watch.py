"""The reconciler's watch over running gangs: read their progress, flag stragglers, restart
hung gangs (`suan.control.progress_reader`, `.stragglers`, `.hangs`).

Each straggler is one `straggler` event per rank and attempt (not repeated each pass); a hang
is a `hang` event, then the gang is stopped as a failed one (SIGTERM, SIGKILL after the stop
grace) and, once stopped, restarted under its restart policy, counting a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from suan.control.config import ControlConfig
from suan.control.hangs import find_hang
from suan.control.jobs import scheduler_job
from suan.control.lifecycle import JobState, after_exit
from suan.control.models import JobRow
from suan.control.progress_reader import GangProgress, ProgressReader
from suan.control.store import add_event
from suan.control.stragglers import find_stragglers
from suan.exec import Executor, JobStatus


class GangWatch:
    """Progress, stragglers and hangs of the running jobs; `watch` runs once a tick."""

    def __init__(self, executor: Executor, config: ControlConfig):
        self.executor = executor
        self.config = config
        self.reader = ProgressReader(executor)
        self._flagged: set[tuple[str, int, int]] = set()

    def watch(
        self, session: Session, rows: Sequence[JobRow], statuses: Mapping[str, JobStatus],
        now: float,
    ) -> None:
        """Read the progress of every running job of `rows` whose current attempt `statuses`
        reports; flag its stragglers; stop it when it hangs."""
        watched: dict[str, tuple[JobRow, JobStatus]] = {}
        for row in rows:
            status = statuses.get(row.id)
            if (row.state == JobState.RUNNING and row.stop_target is None
                    and status is not None and status.attempt == row.attempt
                    and not status.stopping):
                watched[row.id] = (row, status)
        jobs = [(job_id, row.attempt, len(status.ranks))
                for job_id, (row, status) in watched.items()]
        gangs = self.reader.read(session, jobs, now)
        self._flagged = {key for key in self._flagged if key[0] in self.reader.gangs}
        for job_id, (row, status) in watched.items():
            self._flag_stragglers(session, row, gangs[job_id])
            running = {rank.rank for rank in status.ranks if rank.running}
            self._stop_if_hung(session, row, gangs[job_id], running, now)

    def _flag_stragglers(self, session: Session, row: JobRow, gang: GangProgress) -> None:
        times = {rank: seen.step_times for rank, seen in gang.ranks.items()}
        for straggler in find_stragglers(times):
            key = (row.id, gang.attempt, straggler.rank)
            if key not in self._flagged:
                self._flagged.add(key)
                add_event(session, row.id, "straggler", straggler.message())

    def _stop_if_hung(
        self, session: Session, row: JobRow, gang: GangProgress, running: set[int], now: float
    ) -> None:
        job = scheduler_job(row)
        timeout = job.no_progress_timeout_s or self.config.no_progress_timeout_s
        hang = find_hang(gang, running, timeout, now)
        if hang is None:
            return
        message = hang.message()
        add_event(session, row.id, "hang", message)
        target = after_exit(job.restart_policy, False, row.restarts, job.max_restarts)
        row.stop_target, row.stop_reason = target.value, f"rank {hang.rank} hung: {message}"
        self.executor.stop(row.id, self.config.stop_grace_s)
