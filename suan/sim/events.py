"""Simulator events and the deterministic event queue.

Events are ordered by `(time, kind, seq)`: at one timestamp, finishes come before failures,
recoveries, arrivals and ticks, and events of one kind keep the order they were pushed in
(`seq`). Nothing here reads the wall clock; the same pushes give the same pops.
"""

from __future__ import annotations

import heapq
from enum import IntEnum
from typing import NamedTuple


class Kind(IntEnum):
    """Event kinds, in the order they are handled at one timestamp."""

    FINISH = 0
    FAILURE = 1
    RECOVERY = 2
    ARRIVAL = 3
    WAKE = 4
    TICK = 5


class Event(NamedTuple):
    """Something that happens at `time`. `subject` is a job index or node name; `epoch`
    invalidates a job's finish event when the job was stopped and restarted since. `seq` is
    unique, so ordering never compares subjects."""

    time: float
    kind: Kind
    seq: int
    subject: int | str = -1
    epoch: int = 0


class EventQueue:
    """A `(time, kind, seq)` min-heap with an injected clock (`now`), which never goes back."""

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0
        self.now = 0.0
        self.popped = 0

    def push(self, time: float, kind: Kind, subject: int | str = -1, epoch: int = 0) -> None:
        """Schedule an event; a time in the past is an error."""
        if time < self.now:
            raise ValueError(f"event at t={time} is before the clock t={self.now}")
        self._seq += 1
        heapq.heappush(self._heap, Event(time, kind, self._seq, subject, epoch))

    def __len__(self) -> int:
        return len(self._heap)

    def next_time(self) -> float | None:
        return self._heap[0].time if self._heap else None

    def pop_batch(self) -> list[Event]:
        """Every event at the earliest timestamp, in order; the clock moves to that time."""
        if not self._heap:
            return []
        time = self._heap[0].time
        self.now = time
        batch = []
        while self._heap and self._heap[0].time == time:
            batch.append(heapq.heappop(self._heap))
        self.popped += len(batch)
        return batch
