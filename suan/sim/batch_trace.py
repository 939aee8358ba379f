"""The batch columns of a generic trace, read with the job spec's own parsers.

- `time_limit`: seconds, or a duration as a job spec writes it (`90m`, `1h30m`;
  `suan.jobs.units.parse_duration`), > 0; each run of the job is stopped there.
- `dependency`: `afterok:a:b,afterany:c` (`suan.jobs.batch_syntax.parse_dependencies`), naming
  job ids of earlier rows, submitted no later than this row; an array row's id names every
  member, as an array id does in a job spec. Earlier rows only: a job can depend only on jobs
  that exist when it is submitted, so a trace cannot hold a cycle.
- `array`: `0-9:2%4` (`suan.jobs.batch_syntax.parse_array`): the row becomes one member
  `<job_id>-<index>` per index, each running the row's duration, at most the throttle at once.

A bad cell raises `BadRow` naming its column; the reader adds the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from suan.jobs.batch_syntax import (
    ARRAY_ALLOWED,
    DEPENDENCY_ALLOWED,
    parse_array,
    parse_dependencies,
)
from suan.jobs.units import UnitError, parse_duration
from suan.sim.workload import TraceJob

BATCH_COLUMNS = ("time_limit", "dependency", "array")


class BadRow(ValueError):
    """One bad row: what was wrong with it."""


@dataclass
class BatchColumns:
    """Reads the batch columns of each row against the rows read before it."""

    known: dict[str, tuple[tuple[str, ...], float]] = field(default_factory=dict)
    """A row's job id (and each array member's) -> its job ids and its submit time."""

    def expand(self, job: TraceJob, cells: dict[str, str]) -> TraceJob | list[TraceJob]:
        """The jobs of one row: `job` with its time limit and dependencies, or, for an
        array row, its members. BadRow for a bad cell."""
        if not any(_cell(cells, column) for column in BATCH_COLUMNS):
            self.known.setdefault(job.job_id, ((job.job_id,), job.submit_time))
            return job
        job = replace(job, time_limit_s=_time_limit(cells),
                      dependencies=self._dependencies(cells, job))
        members = _members(job, _cell(cells, "array"))
        ids = tuple(member.job_id for member in members)
        self.known.setdefault(job.job_id, (ids, job.submit_time))
        if members[0].array_id:
            for member in ids:
                self.known.setdefault(member, ((member,), job.submit_time))
        return members

    def _dependencies(self, cells: dict[str, str], job: TraceJob) -> tuple[tuple[str, str], ...]:
        text = _cell(cells, "dependency")
        if not text:
            return ()
        try:
            parsed = parse_dependencies(text)
        except ValueError as exc:
            raise BadRow(f"column dependency: {exc}; expected {DEPENDENCY_ALLOWED}") from None
        pairs: list[tuple[str, str]] = []
        for dependency in parsed:
            if dependency.target not in self.known:
                raise BadRow(f"column dependency: job {dependency.target!r} is not on an "
                             "earlier row of the trace")
            ids, submitted = self.known[dependency.target]
            if submitted > job.submit_time:
                raise BadRow(f"column dependency: job {dependency.target!r} is submitted "
                             f"after this one (at {submitted:g} s, this one at "
                             f"{job.submit_time:g} s)")
            pairs.extend((dependency.kind, target) for target in ids)
        return tuple(dict.fromkeys(pairs))


def _cell(cells: dict[str, str], column: str) -> str:
    return (cells.get(column) or "").strip()


def _time_limit(cells: dict[str, str]) -> float | None:
    text = _cell(cells, "time_limit")
    if not text:
        return None
    try:
        seconds = parse_duration(text)
    except UnitError as exc:
        raise BadRow(f"column time_limit: {exc}; expected {exc.allowed}") from None
    if seconds <= 0:
        raise BadRow(f"column time_limit: {text!r} must be > 0")
    return seconds


def _members(job: TraceJob, text: str) -> list[TraceJob]:
    """`job` alone, or one member per index of the array `text`."""
    if not text:
        return [job]
    try:
        array = parse_array(text)
    except ValueError as exc:
        raise BadRow(f"column array: {exc}; expected {ARRAY_ALLOWED}") from None
    return [replace(job, job_id=f"{job.job_id}-{index}", array_id=job.job_id,
                    array_index=index, array_limit=array.limit)
            for index in array.indices]
