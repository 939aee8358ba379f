"""Service classes: which waiting or running job to serve first when run times are unknown.

A job's *attained service* is the device-seconds it has received. With no runtime estimate,
the best a scheduler can do for average completion time is to learn, per queue, how much
service jobs end up needing (from the jobs that finished) and to serve first the jobs most
likely to finish soon per unit of further service: the Gittins index of the job's attained
service under that learned distribution. For a job that has received `a`,

    index(a) = max over b > a of  P(S <= b | S > a) / E[min(S, b) - a | S > a],

where S is the service a job of the queue needs. When the distribution has a decreasing
hazard rate the index falls with `a` and this is least-attained-service (Tiresias's LAS);
on real logs it is not monotone: on Philly, a job that has run 40 minutes is likely to be
one of the many one-hour jobs and about to finish, so it is served before a new one.

The index is evaluated at the bounds of a fixed logarithmic grid of attained service and
bucketed into *classes* (class 0 is served first; each class down is a factor `CLASS_RATIO`
lower index), so that jobs change class only at a few known points and a scheduler can
preempt a running job only when a waiting one is in a strictly better class. A queue with
fewer than `MIN_SAMPLES` finished jobs uses the LAS classes of `suan.sched.order`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

GRID: tuple[float, ...] = tuple(float(round(x)) for x in np.geomspace(30.0, 3.0e7, 61))
"""Attained device-seconds at which a job's class may change (30 s to a year, 12 a decade)."""
CLASS_RATIO = 2.0
"""A job moves one class down for each halving of its index below the queue's best."""
MIN_SAMPLES = 50
"""Finished jobs a queue needs before its own distribution is trusted."""
LAS_BOUNDS: tuple[float, ...] = (3_600.0, 36_000.0)
"""Fallback classes: Tiresias-style discretised LAS (0 below 1 h, 1 below 10 h, then 2)."""


def gittins_indices(samples: Sequence[float], points: Sequence[float],
                    weights: Sequence[float] | None = None) -> np.ndarray:
    """The Gittins index of a job that has attained each of `points`, for needs drawn from
    `samples` (device-seconds, with probability proportional to `weights`, equal by
    default); 0 where no sample exceeds the point.

    Computed for all points at once: row i, column k is the stop at the k-th smallest need.
    """
    order = np.argsort(np.asarray(samples, dtype=float), kind="stable")
    needs = np.asarray(samples, dtype=float)[order]
    mass = np.ones(len(needs)) if weights is None else np.asarray(weights, dtype=float)[order]
    at = np.asarray(points, dtype=float)[:, None]
    total_mass = np.concatenate(([0.0], np.cumsum(mass)))
    total_work = np.concatenate(([0.0], np.cumsum(mass * needs)))
    first = np.searchsorted(needs, at[:, 0], side="right")
    alive = (total_mass[-1] - total_mass[first])[:, None]
    done = total_mass[None, 1:] - total_mass[first][:, None]
    worked = total_work[None, 1:] - total_work[first][:, None] - at * done
    spent = worked + (alive - done) * (needs[None, :] - at)
    ratio = np.where(np.arange(len(needs))[None, :] >= first[:, None],
                     done / np.maximum(spent, 1e-9), 0.0)
    best = ratio.max(axis=1, initial=0.0)
    return np.where(alive[:, 0] > 0, best, 0.0)


def kaplan_meier(finished: Sequence[float], unfinished: Sequence[float]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Needs and their probabilities from finished jobs' needs and unfinished jobs' service so
    far (right-censored: they need more). Without this, a sample of finished jobs
    under-represents long jobs, which are still running. The mass beyond the last finished
    need goes to the largest service seen."""
    ends = np.sort(np.asarray(finished, dtype=float))
    if not len(unfinished):
        return ends, np.full(len(ends), 1.0 / max(len(ends), 1))
    cut = np.sort(np.asarray(unfinished, dtype=float))
    values, counts = np.unique(ends, return_counts=True)
    at_risk = (len(ends) - np.searchsorted(ends, values, side="left")) + (
        len(cut) - np.searchsorted(cut, values, side="left"))
    survival = np.cumprod(1.0 - counts / at_risk)
    before = np.concatenate(([1.0], survival[:-1]))
    needs, mass = list(values), list(before - survival)
    if survival[-1] > 0:
        needs.append(max(float(cut[-1]), float(values[-1])))
        mass.append(float(survival[-1]))
    return np.asarray(needs), np.asarray(mass)


def classes_from_indices(indices: np.ndarray) -> tuple[int, ...]:
    """Bucket indices into classes: 0 for the best, +1 per factor CLASS_RATIO below it."""
    best = float(indices.max()) if len(indices) else 0.0
    if best <= 0:
        return tuple(0 for _ in indices)
    worst = len(indices)
    return tuple(
        worst if value <= 0 else int(math.log(best / value) / math.log(CLASS_RATIO))
        for value in indices
    )


def _las_classes(grid: Sequence[float]) -> tuple[int, ...]:
    """LAS classes on the grid's cells (cell 0 is below grid[0])."""
    starts = (0.0, *grid)
    return tuple(sum(1 for bound in LAS_BOUNDS if start >= bound) for start in starts)


@dataclass(frozen=True)
class ServiceClasses:
    """Per queue, the class of each cell of the attained-service grid.

    Cell i covers attained service in [grid[i-1], grid[i]) (cell 0 starts at 0). A queue not
    listed uses `fallback` (LAS classes).
    """

    per_queue: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    grid: tuple[float, ...] = GRID
    fallback: tuple[int, ...] = field(default_factory=lambda: _las_classes(GRID))

    def level(self, queue: str, attained_s: float) -> int:
        """The class of a job of `queue` that has attained `attained_s` device-seconds."""
        cells = self.per_queue.get(queue, self.fallback)
        return cells[bisect.bisect_right(self.grid, attained_s)]

    def next_change(self, queue: str, attained_s: float) -> float | None:
        """The attained service (> attained_s) at which such a job next changes class, or
        None if it never does."""
        cells = self.per_queue.get(queue, self.fallback)
        cell = bisect.bisect_right(self.grid, attained_s)
        current = cells[cell]
        for later in range(cell + 1, len(cells)):
            if cells[later] != current:
                return self.grid[later - 1]
        return None

    def describe(self, queue: str) -> str:
        source = "learned from finished jobs" if queue in self.per_queue else "LAS fallback"
        return f"service classes of queue {queue} ({source})"


LAS_CLASSES = ServiceClasses()
"""Classes for a scheduler that has no history: LAS levels."""


def learn_classes(samples_by_queue: Mapping[str, Sequence[float]],
                  grid: Sequence[float] = GRID) -> ServiceClasses:
    """Service classes from each queue's finished jobs' device-seconds (queues with fewer
    than MIN_SAMPLES keep the LAS fallback)."""
    per_queue = {
        queue: queue_classes(samples, (), grid)
        for queue, samples in samples_by_queue.items() if len(samples) >= MIN_SAMPLES
    }
    return ServiceClasses(per_queue, tuple(grid), _las_classes(grid))


def queue_classes(finished: Sequence[float], unfinished: Sequence[float],
                  grid: Sequence[float] = GRID) -> tuple[int, ...]:
    """One queue's class per grid cell, from its finished jobs' needs and its unfinished
    jobs' service so far (`kaplan_meier`)."""
    needs, mass = kaplan_meier(finished, unfinished)
    return classes_from_indices(gittins_indices(needs, (0.0, *grid), mass))


class ServiceHistory:
    """The device-seconds of each queue's most recent `keep` finished jobs, and the classes
    learned from them. A queue becomes due for relearning after `every` more of its jobs
    finish (workloads drift: a window of recent jobs tracks them); `relearn` does it, which a
    caller runs when the order matters, i.e. when jobs wait."""

    def __init__(self, keep: int = 500, every: int = 50):
        self.samples: dict[str, list[float]] = {}
        self.fresh: dict[str, int] = {}
        self.tables: dict[str, tuple[int, ...]] = {}
        self.due: set[str] = set()
        self.keep = keep
        self.every = every
        self.classes = LAS_CLASSES

    def add(self, queue: str, device_seconds: float) -> None:
        """Record a finished job of `queue`."""
        samples = self.samples.setdefault(queue, [])
        samples.append(device_seconds)
        if len(samples) > self.keep:
            del samples[: len(samples) - self.keep]
        fresh = self.fresh.get(queue, 0) + 1
        self.fresh[queue] = fresh
        if len(samples) >= MIN_SAMPLES and fresh >= self.every:
            self.due.add(queue)

    def relearn(self, unfinished: Callable[[str], Sequence[float]] | None = None) -> bool:
        """Relearn the queues that are due; True when the classes changed. `unfinished(q)`
        gives the service so far of queue q's jobs that started and have not finished,
        counted as censored needs (`kaplan_meier`)."""
        changed = False
        grid = self.classes.grid
        for queue in sorted(self.due):
            self.fresh[queue] = 0
            table = queue_classes(self.samples[queue],
                                  unfinished(queue) if unfinished else (), grid)
            if self.tables.get(queue) != table:
                self.tables[queue] = table
                changed = True
        self.due.clear()
        if changed:
            self.classes = ServiceClasses(dict(self.tables), grid, self.classes.fallback)
        return changed

    def extend(self, finished: Iterable[tuple[str, float]]) -> ServiceClasses:
        """Record many finished jobs at once (e.g. a store's history) and return the
        classes."""
        for queue, device_seconds in finished:
            self.samples.setdefault(queue, []).append(device_seconds)
        for samples in self.samples.values():
            del samples[: max(0, len(samples) - self.keep)]
        self.classes = learn_classes(self.samples, self.classes.grid)
        self.tables = dict(self.classes.per_queue)
        self.fresh = {q: 0 for q in self.samples}
        self.due.clear()
        return self.classes
