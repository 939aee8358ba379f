"""What the goodput breakdown reads about one job: its events, its progress records, its size.

A `Timeline` is plain data, filled from the store (`suan.goodput.store`) or built by hand in
tests; `suan.goodput.breakdown` turns it into the parts of the job's wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mark:
    """One event of the job: when, what kind (`scheduled`, `running`, `rank-failed`, `hang`,
    ...; see docs/goodput.md) and its message."""

    time: float
    kind: str
    message: str = ""


@dataclass(frozen=True)
class Record:
    """One progress record of one rank, stamped with the server's clock (`seen_at`).

    `tokens` is the rank's own running count of tokens trained on (its share of the batch);
    `step_time_s` the seconds the step took on that rank; `checkpoint_s` the seconds of it
    spent saving a checkpoint (0 or None: no save at this step)."""

    attempt: int
    rank: int
    step: int
    seen_at: float
    tokens: int | None = None
    step_time_s: float | None = None
    checkpoint_s: float | None = None


@dataclass(frozen=True)
class Timeline:
    """A job from submission to `end` (None while it lives: the breakdown then ends at the
    time it is asked for). `marks` are its events in order; `records` its progress records;
    `devices` the devices each attempt holds; `user_waits` the intervals the job's owner made it
    wait (holds, `notBefore`, dependencies)."""

    submit_time: float
    end_time: float | None
    devices: int
    marks: tuple[Mark, ...] = ()
    records: tuple[Record, ...] = ()
    user_waits: tuple[tuple[float, float], ...] = field(default=())
