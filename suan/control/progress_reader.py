"""Reading the progress lines ranks print (`suan.progress`) out of their logs into the store.

For every running job, `ProgressReader.read` asks the executor for each rank's new log bytes
(`executor.logs(job_id, rank, offset)`), keeping one offset per rank; a partial last line
waits for the next read. Each attempt's output in a rank's log starts with the header line
`--- suan: attempt N, rank R, ...` that every engine writes, so a record belongs to the
attempt whose header came last. Records are stored in the `progress` table (`ProgressRow`)
with `seen_at` = the server's clock when the line was read, and kept in memory per gang
(`GangProgress`) for straggler and hang detection.

Bounds, so that a chatty log cannot stall the reconciler:

- a job's logs are read at most every `READ_EVERY_S` seconds, each rank at most
  `BYTES_PER_RANK` bytes a read and all ranks together at most `BYTES_PER_PASS` bytes a pass;
  a rank with more to read (its read filled its limit, or the pass's budget ran out) is read
  first on the next pass, `BEHIND_BYTES` at a time, until it has caught up: read late, never
  skipped;
- a line longer than `LONGEST_LINE` is not a progress line and is dropped unread.

What is kept (the thinning rule): every record of the last `KEEP_RECENT` steps of each rank and
attempt; of older ones only those at steps that are multiples of `THIN_EVERY`, and those that
carry a checkpoint time. Steps increase within an attempt: a record whose step is not above the
last stored one of its rank and attempt is a repeat (a log read again after a server restart)
and is dropped.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from suan.control.models import ProgressRow
from suan.exec import EngineError, Executor
from suan.progress import Progress, parse

log = logging.getLogger("suan.progress")
READ_EVERY_S = 1.0
"""A job's logs are read at most this often: hang timeouts are tens of seconds or more, so a
1 s read grain adds at most a few percent to when a hang is seen, and a cluster of 1,000 ranks
costs 1,000 small reads a second, not one per rank per reconciler tick."""
BYTES_PER_RANK = 64 * 1024
"""At most this much of one rank's log a read: about 600 progress lines (~100 bytes each), far
more than a training loop prints in `READ_EVERY_S`."""
BEHIND_BYTES = 4 * 1024 * 1024
"""At most this much of one rank's log a read when the last read left more to read (a chatty
rank, or a log read again from its start after a server restart): such a rank is read again on
the next pass, catching up at up to 16 MiB a second at the reconciler's 0.25 s tick."""
BYTES_PER_PASS = 8 * 1024 * 1024
"""At most this much of all logs together a pass (tens of milliseconds of reading and
parsing)."""
LONGEST_LINE = 4096
"""A progress line is about 100 bytes; longer lines are other output and are dropped unread."""
KEEP_RECENT = 100
"""Every record of this many latest steps per rank is kept (detection reads the last few)."""
THIN_EVERY = 100
"""Of older records, those at steps that are multiples of this are kept (a 1M-step run keeps
10,000 per rank): enough for step-time and token-rate history, at a bounded size."""
FORGET_AFTER_S = 600.0
"""A job not asked about for this long (it ended, or waits to run again) is forgotten; asked
about again later, its logs are read from their start (no record is stored twice)."""
WINDOW = 10
"""Step times per rank kept in memory for straggler detection (`suan.control.stragglers`)."""

_HEADER = re.compile(rb"^--- suan: attempt (\d+), ")


@dataclass
class RankProgress:
    """What one rank of the current attempt has reported: its last step, when that step was
    first seen (server clock), and its latest step times (at most `WINDOW`)."""

    step: int
    seen_at: float
    step_times: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))


@dataclass
class GangProgress:
    """The reported progress of one job's current attempt, by rank; `watched_since` is when
    this server first read the attempt's logs (a hang is timed from no earlier than that)."""

    attempt: int
    watched_since: float
    ranks: dict[int, RankProgress] = field(default_factory=dict)


@dataclass
class _Cursor:
    """Where the reader is in one rank's log: the next offset, the partial line read so far
    (or that a too-long line is being skipped), and the attempt of the last header with the
    last step stored for it."""

    offset: int = 0
    partial: bytes = b""
    skipping: bool = False
    attempt: int | None = None
    last_step: int = -1
    since_thinning: int = 0


class ProgressReader:
    """Reads ranks' logs through `executor.logs` and stores their progress records."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.gangs: dict[str, GangProgress] = {}
        self._cursors: dict[tuple[str, int], _Cursor] = {}
        self._read_at: dict[str, float] = {}
        self._last_given: dict[str, float] = {}
        self._behind: set[tuple[str, int]] = set()
        self._rows: list[dict[str, object]] = []
        self._thinning: dict[tuple[str, int, int], int] = {}

    def read(
        self, session: Session, jobs: Iterable[tuple[str, int, int]], now: float
    ) -> dict[str, GangProgress]:
        """Read the new log bytes of each (job id, current attempt, rank count) that is due,
        store the records and return the progress of every job given (jobs not given are
        forgotten)."""
        jobs = list(jobs)
        given = {job_id for job_id, _, _ in jobs}
        self._last_given.update((job_id, now) for job_id in given)
        self._forget_absent(now)
        due = []
        for job_id, attempt, ranks in jobs:
            gang = self.gangs.get(job_id)
            if gang is None or gang.attempt != attempt:
                self.gangs[job_id] = GangProgress(attempt, now)
            if now - self._read_at.get(job_id, float("-inf")) >= READ_EVERY_S:
                self._read_at[job_id] = now
                due += [(job_id, rank) for rank in range(ranks)]
        behind = {key for key in self._behind if key[0] in given}
        self._behind = set()
        budget = BYTES_PER_PASS
        for key in dict.fromkeys([*sorted(behind), *due]):
            limit = min(BEHIND_BYTES if key in behind else BYTES_PER_RANK, budget)
            got = self._read_rank(session, *key, limit, now) if limit > 0 else 0
            budget -= got
            if limit == 0 or got == limit:
                self._behind.add(key)  # more to read: first in line next pass
        self._write(session)
        return {job_id: self.gangs[job_id] for job_id in given}

    def _forget_absent(self, now: float) -> None:
        """Forget the jobs not given for `FORGET_AFTER_S`. A job given again sooner (a tick
        whose poll missed it, a restart's backoff) keeps its offsets and, for the same attempt,
        its progress: a hung rank is not given a fresh clock."""
        gone = {job_id for job_id, seen in self._last_given.items()
                if now - seen > FORGET_AFTER_S}
        if not gone:
            return
        for job_id in gone:
            del self._last_given[job_id]
            self.gangs.pop(job_id, None)
            self._read_at.pop(job_id, None)
        for key in [key for key in self._cursors if key[0] in gone]:
            del self._cursors[key]

    def _read_rank(self, session: Session, job_id: str, rank: int, limit: int, now: float) -> int:
        """Read and store what rank `rank` wrote since the last read; the bytes read."""
        cursor = self._cursors.setdefault((job_id, rank), _Cursor())
        try:
            data, cursor.offset = self.executor.logs(job_id, rank, cursor.offset, limit)
        except (EngineError, OSError) as exc:  # read again next time; never fail the tick
            log.warning("cannot read the log of job %s rank %d: %s", job_id, rank, exc)
            return 0
        for line in self._whole_lines(cursor, data):
            header = _HEADER.match(line)
            if header:
                cursor.attempt = int(header.group(1))
                cursor.last_step = _stored_step(session, job_id, cursor.attempt, rank)
                continue
            record = parse(line.decode("utf-8", errors="replace"))
            if record is not None and record.step > cursor.last_step:
                self._store(session, job_id, rank, cursor, record, now)
        return len(data)

    @staticmethod
    def _whole_lines(cursor: _Cursor, data: bytes) -> list[bytes]:
        """The complete lines in `data` after what `cursor` kept; the rest is kept for the next
        read, and a line longer than LONGEST_LINE is dropped."""
        lines = (cursor.partial + data).split(b"\n")
        cursor.partial = lines.pop()
        if cursor.skipping and lines:
            lines.pop(0)  # the end of the long line being skipped
            cursor.skipping = False
        if len(cursor.partial) > LONGEST_LINE:
            cursor.partial, cursor.skipping = b"", True
        return [line for line in lines if len(line) <= LONGEST_LINE]

    def _store(
        self, session: Session, job_id: str, rank: int, cursor: _Cursor, record: Progress,
        now: float,
    ) -> None:
        attempt = cursor.attempt if cursor.attempt is not None else self.gangs[job_id].attempt
        self._rows.append({
            "job_id": job_id, "attempt": attempt, "rank": rank, "step": record.step,
            "tokens": record.tokens, "step_time_s": record.step_time_s,
            "checkpoint_s": record.checkpoint_s, "seen_at": now,
        })
        cursor.last_step = record.step
        gang = self.gangs[job_id]
        if attempt == gang.attempt:
            seen = gang.ranks.setdefault(rank, RankProgress(record.step, now))
            seen.step, seen.seen_at = record.step, now
            if record.step_time_s is not None:
                seen.step_times.append(record.step_time_s)
        cursor.since_thinning += 1
        if cursor.since_thinning >= KEEP_RECENT:
            cursor.since_thinning = 0
            self._thinning[(job_id, attempt, rank)] = record.step - KEEP_RECENT

    def _write(self, session: Session) -> None:
        """Insert the pass's records in one statement (adding ORM objects one by one cost five
        times as much CPU), then thin the ranks that are due."""
        if self._rows:
            session.connection().execute(insert(ProgressRow.__table__), self._rows)
        for (job_id, attempt, rank), below_step in self._thinning.items():
            _thin(session, job_id, attempt, rank, below_step)
        self._rows, self._thinning = [], {}


def _stored_step(session: Session, job_id: str, attempt: int, rank: int) -> int:
    """The last step stored for a rank's attempt (-1: none)."""
    query = select(func.max(ProgressRow.step)).where(
        ProgressRow.job_id == job_id, ProgressRow.attempt == attempt, ProgressRow.rank == rank
    )
    found = session.scalar(query)
    return -1 if found is None else int(found)


def _thin(session: Session, job_id: str, attempt: int, rank: int, below_step: int) -> None:
    """Drop a rank's records below `below_step` but those the thinning rule keeps."""
    session.execute(
        delete(ProgressRow).where(
            ProgressRow.job_id == job_id,
            ProgressRow.attempt == attempt,
            ProgressRow.rank == rank,
            ProgressRow.step < below_step,
            ProgressRow.step % THIN_EVERY != 0,
            ProgressRow.checkpoint_s.is_(None),
        )
    )
