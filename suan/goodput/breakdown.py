"""Where a job's wall time went: a pure function from its `Timeline` to a `Breakdown`.

The wall time, from submission to the end (or to `now` for a live job), is cut into
consecutive phases by the job's events and every second lands in exactly one bucket, so the
buckets sum to the wall time (up to float rounding). The rules, in docs/goodput.md:

- waiting (before the first `scheduled`, and after `preempted`, `requeued` or a refused launch
  until the next `scheduled`) is `user_wait` where it overlaps the owner's own waits (holds,
  `notBefore`, dependencies), else `queue_wait`;
- after `restarting`, the backoff the message names (`restart N/M in Xs after: ...`) is
  `restart`, the rest of the wait `queue_wait`;
- an attempt (from `scheduled` to the event that ends it) is `restart` until its first
  progress (its first record's time, less the step time of any steps between the step it
  resumed from, the last one saved before it, and that record that left no record); then, if
  it ended without success (`restarting`, `requeued`, `preempted`, `failed`, a refused
  launch), the work since the last record that saved a checkpoint is `lost`
  up to the stop (the first `rank-failed`, `preempting`, `stopping`, `drain` or `hang`), except
  that after a `hang` the time from the last progress record to the `hang` event is `hang`;
  from the stop to the attempt's end (tearing the gang down) is `restart`;
- the preserved part of an attempt is `productive`, less `checkpoint` (per step, the longest
  `checkpoint_s` of its ranks) and `straggler` (per step, the slowest rank's step time less
  the ranks' median; where the store kept only every k-th step of an old stretch, a kept
  step stands for the k steps since the one kept before it);
- a job that never reports progress has no first record: an attempt is `restart` from
  `scheduled` to `running` and `productive_unknown` after it.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, fields
from operator import attrgetter

from suan.goodput.timeline import Mark, Record, Timeline

ENDED_WELL = frozenset({"succeeded", "cancelled", "timeout"})
"""Events that end an attempt with its work kept."""
ENDED_BADLY = frozenset({"restarting", "requeued", "preempted", "pending", "failed"})
"""Events that end an attempt with the work since its last checkpoint lost."""
STOPS = frozenset({"rank-failed", "preempting", "stopping", "drain", "hang"})
"""Events that mark the moment a failing attempt stopped making progress (a `drain` event is
written when the drain's grace has ended and the gang is stopped)."""
BACKOFF = re.compile(r" in ([0-9]+(?:\.[0-9]+)?)s after")


@dataclass
class Breakdown:
    """Seconds of a job's wall time in each bucket (see the module docstring)."""

    queue_wait: float = 0.0
    user_wait: float = 0.0
    restart: float = 0.0
    lost: float = 0.0
    hang: float = 0.0
    straggler: float = 0.0
    checkpoint: float = 0.0
    productive: float = 0.0
    productive_unknown: float = 0.0
    reports_progress: bool = False

    @staticmethod
    def buckets() -> tuple[str, ...]:
        """The bucket names, in display order."""
        return tuple(f.name for f in fields(Breakdown) if f.name != "reports_progress")

    def as_dict(self) -> dict[str, float]:
        """The buckets by name."""
        return {name: getattr(self, name) for name in self.buckets()}

    @property
    def wall(self) -> float:
        """The sum of the buckets: the job's wall time."""
        return sum(self.as_dict().values())

    @property
    def eligible(self) -> float:
        """Wall time less the owner's own waits: the time the job asked to run."""
        return self.wall - self.user_wait

    @property
    def available(self) -> float:
        """Eligible time in which the job was not waiting for the scheduler."""
        return self.eligible - self.queue_wait

    def scheduling_goodput(self) -> float | None:
        """Available / eligible time (None for a job that was never eligible)."""
        return self.available / self.eligible if self.eligible > 0 else None

    def runtime_goodput(self) -> float | None:
        """Productive / available time; None when nothing was available or the job never
        reports progress (its running time is productive-unknown)."""
        if self.available <= 0 or not self.reports_progress:
            return None
        return self.productive / self.available


def breakdown(timeline: Timeline, now: float) -> Breakdown:
    """The parts of `timeline`'s wall time (submission to its end, or `now` while it lives)."""
    end = timeline.end_time if timeline.end_time is not None else now
    end = max(end, timeline.submit_time)
    marks = _clamped(timeline.marks, timeline.submit_time, end)
    by_attempt: dict[int, list[Record]] = defaultdict(list)
    for record in sorted(timeline.records, key=attrgetter("seen_at")):
        by_attempt[record.attempt].append(record)
    result = Breakdown(reports_progress=bool(timeline.records))
    cursor, attempt, position = timeline.submit_time, 0, 0
    backoff: str | None = None  # the `restarting` message while a backoff runs
    resume = 0  # the step the next attempt resumes from: the last one saved before it
    done = False
    while position < len(marks):
        mark = marks[position]
        if mark.kind != "scheduled":
            position += 1
            continue
        _wait(result, timeline, cursor, mark.time, backoff)
        attempt += 1
        closing = _attempt_end(marks, position + 1)
        ended = marks[closing].kind if closing < len(marks) else None
        final = ended is None or ended in ENDED_WELL or ended == "failed"
        cursor = end if final else marks[closing].time
        inside = marks[position + 1 : closing]
        records = by_attempt.get(attempt, [])
        _attempt(result, mark.time, cursor, ended, inside, records, resume)
        resume = max((r.step for r in records if r.checkpoint_s), default=resume)
        backoff = marks[closing].message if ended == "restarting" else None
        done = final
        position = closing + 1
    if not done:
        _wait(result, timeline, cursor, end, backoff)
    return result


def _clamped(marks: tuple[Mark, ...], start: float, end: float) -> list[Mark]:
    """The marks in order, each time moved into [start, end] and not before the one before."""
    out: list[Mark] = []
    floor = start
    for mark in marks:
        when = min(max(mark.time, floor), end)
        floor = when
        out.append(Mark(when, mark.kind, mark.message))
    return out


def _attempt_end(marks: list[Mark], start: int) -> int:
    """Index of the mark that ends the attempt begun just before `start` (len: none yet)."""
    for index in range(start, len(marks)):
        kind = marks[index].kind
        if kind in ENDED_WELL or kind in ENDED_BADLY or kind == "scheduled":
            return index
    return len(marks)


def _wait(
    result: Breakdown, timeline: Timeline, start: float, end: float, after: str | None
) -> None:
    """Book [start, end) of waiting: the backoff `after` (a `restarting` message) names, then
    the owner's own waits, then the queue's."""
    if end <= start:
        return
    if after is not None:
        found = BACKOFF.search(after)
        backoff = float(found.group(1)) if found else end - start
        result.restart += min(backoff, end - start)
        start = min(end, start + backoff)
    own = sum(
        max(0.0, min(end, high) - max(start, low)) for low, high in _merged(timeline.user_waits)
    )
    result.user_wait += own
    result.queue_wait += (end - start) - own


def _merged(intervals: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for low, high in sorted(intervals):
        if out and low <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        elif high > low:
            out.append((low, high))
    return out


def _attempt(
    result: Breakdown,
    start: float,
    end: float,
    ended: str | None,
    inside: list[Mark],
    records: list[Record],
    resume: int = 0,
) -> None:
    """Book one attempt, [start, end), that `ended` (None: still running), which resumed
    from step `resume`."""
    failed = ended in ENDED_BADLY
    records = [r for r in records if start <= r.seen_at <= end]
    if not result.reports_progress:
        launched = next((m.time for m in inside if m.kind == "running"), end if failed else start)
        result.restart += launched - start
        result.productive_unknown += end - launched
        return
    if not records:
        launched = end if failed else next(
            (m.time for m in inside if m.kind == "running"), start
        )
        result.restart += launched - start
        result.productive += end - launched
        return
    first = _first_progress(records[0], start, resume)
    result.restart += first - start
    if not failed:
        _preserved(result, first, end, records)
        return
    stop = next((m for m in inside if m.kind in STOPS and m.time >= first), None)
    stop_at = stop.time if stop is not None else end
    before_stop = [r for r in records if r.seen_at <= stop_at]
    saved = max((r.seen_at for r in before_stop if r.checkpoint_s), default=first)
    last = before_stop[-1].seen_at
    _preserved(result, first, saved, [r for r in before_stop if r.seen_at <= saved])
    result.lost += last - saved
    if stop is not None and stop.kind == "hang":
        result.hang += stop_at - last
    else:
        result.lost += stop_at - last
    result.restart += end - stop_at


def _first_progress(record: Record, start: float, resume: int) -> float:
    """When the attempt's first progress was made: its first record's time, less the step
    time of the steps between the resume point and that record that left no record (a rank
    that reports every k-th step, or records the store thinned away)."""
    unseen = record.step - resume - 1
    if unseen <= 0 or not record.step_time_s:
        return record.seen_at
    return max(start, record.seen_at - unseen * record.step_time_s)


def _preserved(result: Breakdown, start: float, end: float, records: list[Record]) -> None:
    """Book [start, end) of kept work: checkpoint saves, straggler waits, the rest productive."""
    span = max(0.0, end - start)
    steps: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        steps[record.step].append(record)
    saving = waiting = 0.0
    previous: int | None = None
    for step in sorted(steps):
        group = steps[step]
        if start < min(r.seen_at for r in group) <= end:
            saving += max((r.checkpoint_s or 0.0) for r in group)
            waiting += _straggle(group) * (step - previous if previous is not None else 1)
        previous = step
    saving = min(saving, span)
    waiting = min(waiting, span - saving)
    result.checkpoint += saving
    result.straggler += waiting
    result.productive += span - saving - waiting


def _straggle(group: list[Record]) -> float:
    """Seconds a step's gang waited on its slowest rank: slowest less the median."""
    times = [r.step_time_s for r in group if r.step_time_s is not None]
    if len(times) < 2:
        return 0.0
    return max(times) - statistics.median(times)
