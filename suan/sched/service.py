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

A job may belong to a series (a sweep, an array, repeated runs of one script), whose members
tend to need alike: once some have finished, the others are ranked by their needs rather than
the queue's (`series_classes`), and while none has, one runs first as the series' probe.
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


TOP_INDEX = 1.0 / GRID[0]
"""The index of class 0: a job about to need one more grid step of service (30 s)."""
NO_INDEX_CLASS = 64
"""The class of a job that no sample says will ever finish (index 0): after every other."""


def classes_from_indices(indices: np.ndarray) -> tuple[int, ...]:
    """Bucket indices into classes on one absolute scale (so that tables of one queue compare):
    class 0 down to TOP_INDEX, then +1 per factor CLASS_RATIO below it."""
    step = math.log(CLASS_RATIO)
    return tuple(
        NO_INDEX_CLASS if value <= 0 else max(0, int(math.log(TOP_INDEX / value) / step))
        for value in indices.tolist()
    )


def _las_classes(grid: Sequence[float]) -> tuple[int, ...]:
    """LAS classes on the grid's cells (cell 0 is below grid[0])."""
    starts = (0.0, *grid)
    return tuple(sum(1 for bound in LAS_BOUNDS if start >= bound) for start in starts)


@dataclass(frozen=True)
class ServiceClasses:
    """Per queue, and per series of jobs inside a queue, the class of each cell of the
    attained-service grid.

    Cell i covers attained service in [grid[i-1], grid[i]) (cell 0 starts at 0). A job of a
    series with a table (`per_series`, keyed by (queue, series)) uses it; other jobs use their
    queue's; a queue not listed uses `fallback` (LAS classes).
    """

    per_queue: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    grid: tuple[float, ...] = GRID
    fallback: tuple[int, ...] = field(default_factory=lambda: _las_classes(GRID))
    per_series: Mapping[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)

    def cells(self, queue: str, series: str = "") -> tuple[int, ...]:
        """The class per grid cell of a job of `queue` (and `series`, if it has a table)."""
        if series and self.per_series:
            table = self.per_series.get((queue, series))
            if table is not None:
                return table
        return self.per_queue.get(queue, self.fallback)

    def level(self, queue: str, attained_s: float, series: str = "") -> int:
        """The class of a job of `queue` (and `series`) that has attained `attained_s`
        device-seconds."""
        return self.cells(queue, series)[bisect.bisect_right(self.grid, attained_s)]

    def next_change(self, queue: str, attained_s: float, series: str = "") -> float | None:
        """The attained service (> attained_s) at which such a job next changes class, or
        None if it never does."""
        cells = self.cells(queue, series)
        cell = bisect.bisect_right(self.grid, attained_s)
        current = cells[cell]
        for later in range(cell + 1, len(cells)):
            if cells[later] != current:
                return self.grid[later - 1]
        return None

    def describe(self, queue: str, series: str = "") -> str:
        if series and (queue, series) in self.per_series:
            return (f"service classes of series {series} in queue {queue} (learned from its "
                    "finished jobs)")
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
    return _classes(needs, mass, (0.0, *grid))


def _classes(needs: np.ndarray, mass: np.ndarray, points: Sequence[float]) -> tuple[int, ...]:
    """The class at each of `points` of a job whose need is `needs` with probability `mass`."""
    return classes_from_indices(gittins_indices(needs, points, mass))


SERIES_SPREAD: tuple[float, ...] = (0.5, 0.7, 1.0, 1.4, 2.0)
"""How far a job's need may lie from a finished sibling's: each sibling's need stands for
these multiples of it, equally likely (siblings in Philly differ by a factor ~1.4)."""
SERIES_DOUBT = 0.05
"""The weight the queue's distribution keeps in a series' (the job may be unlike its
siblings: once it outlives them, it is ranked as a long job of its queue)."""
SERIES_RECENT = 20
"""Finished needs kept per series."""


def series_classes(finished: Sequence[float], outlived: float | None,
                   queue_needs: np.ndarray, queue_mass: np.ndarray,
                   queue_table: tuple[int, ...],
                   grid: Sequence[float] = GRID) -> tuple[int, ...] | None:
    """The class per grid cell of a job of a series, or None when its queue's table holds.

    - Some members finished, needing `finished` (device-seconds): the Gittins index under a
      mixture of their needs (spread by SERIES_SPREAD) and, with weight `doubt` (less the
      more members finished, at least SERIES_DOUBT), the queue's (`queue_needs`,
      `queue_mass`).
    - None finished, and a member has run `outlived` without finishing: that member is the
      series' probe and keeps the queue's classes (`queue_table`, learned from that
      distribution); the members that have not started (cell 0) rank as jobs that need more
      than the smallest spread of `outlived`, SERIES_PROBE_WAIT classes down: they wait for
      the probe's end to tell what they need.
    """
    if not len(finished):
        if outlived is None:
            return None
        beyond = queue_needs > outlived * min(SERIES_SPREAD)
        needs, own = queue_needs[beyond], queue_mass[beyond]
        if not len(needs) or own.sum() <= 0:
            needs, own = np.array([outlived * max(SERIES_SPREAD)]), np.array([1.0])
        first = _mixed_classes(needs, own, SERIES_DOUBT, queue_needs, queue_mass, (0.0,))
        return (first[0] + SERIES_PROBE_WAIT, *queue_table[1:])
    needs = np.outer(np.asarray(finished, dtype=float), SERIES_SPREAD).ravel()
    own = np.full(len(needs), 1.0 / len(needs))
    doubt = max(SERIES_DOUBT, 1.0 / (1.0 + len(finished)))
    return _mixed_classes(needs, own, doubt, queue_needs, queue_mass, (0.0, *grid))


def _mixed_classes(needs: np.ndarray, own: np.ndarray, doubt: float, queue_needs: np.ndarray,
                   queue_mass: np.ndarray, points: Sequence[float]) -> tuple[int, ...]:
    """Classes at `points` under (1 - doubt) x (needs, own) + doubt x the queue's."""
    total = float(queue_mass.sum()) or 1.0
    mixed = np.concatenate((needs, queue_needs))
    mass = np.concatenate((own * ((1.0 - doubt) / own.sum()), queue_mass * (doubt / total)))
    return _classes(mixed, mass, points)


SERIES_PROBE_WAIT = 1
"""Classes a job of a series falls, while it has not started, when a sibling runs and none has
finished: the sibling's end will tell its need, so jobs of unprobed series go first."""


@dataclass
class SeriesRecord:
    """What a history knows of one series: its finished members' needs (most recent
    SERIES_RECENT), and, while none has finished, the most service a member has had (None:
    none has started)."""

    finished: list[float] = field(default_factory=list)
    outlived: float | None = None


class ServiceHistory:
    """The device-seconds of each queue's most recent `keep` finished jobs, and the classes
    learned from them. A queue becomes due for relearning after `every` more of its jobs
    finish (workloads drift: a window of recent jobs tracks them); `relearn` does it, which a
    caller runs when the order matters, i.e. when jobs wait.

    Jobs may belong to a *series* (a sweep, an array, repeated runs of one script), whose
    members tend to need alike (`series_classes`). The caller reports members as they run
    (`running`) and finish (`add`); records are kept for the `keep_series` series touched
    last.
    """

    def __init__(self, keep: int = 500, every: int = 50, keep_series: int = 2_000):
        self.samples: dict[str, list[float]] = {}
        self.fresh: dict[str, int] = {}
        self.tables: dict[str, tuple[int, ...]] = {}
        self.due: set[str] = set()
        self.keep = keep
        self.every = every
        self.keep_series = keep_series
        self.series: dict[tuple[str, str], SeriesRecord] = {}
        self.series_tables: dict[tuple[str, str], tuple[int, ...]] = {}
        self.series_due: set[tuple[str, str]] = set()
        self.distributions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.classes = LAS_CLASSES

    def add(self, queue: str, device_seconds: float, series: str = "") -> None:
        """Record a finished job of `queue` (and `series`)."""
        samples = self.samples.setdefault(queue, [])
        samples.append(device_seconds)
        if len(samples) > self.keep:
            del samples[: len(samples) - self.keep]
        fresh = self.fresh.get(queue, 0) + 1
        self.fresh[queue] = fresh
        if len(samples) >= MIN_SAMPLES and fresh >= self.every:
            self.due.add(queue)
        if series:
            self._series_finished((queue, series), device_seconds)

    def _series_finished(self, key: tuple[str, str], device_seconds: float) -> None:
        record = self._touch(key)
        record.finished = [*record.finished[1 - SERIES_RECENT:], device_seconds]
        record.outlived = None

    def running(self, queue: str, series: str, attained_s: float) -> None:
        """Record that a job of `series` has run `attained_s` device-seconds without finishing
        (while none of its series has finished, its siblings are then ranked as jobs that
        need at least a fraction of that; see `series_classes`)."""
        if not series:
            return
        key = (queue, series)
        record = self.series.get(key)
        if record is not None and record.finished:
            return
        before = None if record is None else record.outlived
        grid = self.classes.grid
        if before is None or (attained_s > before and bisect.bisect_right(grid, attained_s)
                              != bisect.bisect_right(grid, before)):
            self._touch(key).outlived = attained_s

    def _touch(self, key: tuple[str, str]) -> SeriesRecord:
        """The series' record, made the most recent (a series' table changes with it)."""
        record = self.series.pop(key, None) or SeriesRecord()
        self.series[key] = record
        self.series_due.add(key)
        while len(self.series) > self.keep_series:
            oldest = next(iter(self.series))
            del self.series[oldest]
            self.series_tables.pop(oldest, None)
            self.series_due.discard(oldest)
        return record

    @property
    def pending(self) -> bool:
        """Whether some queue or series is due for relearning."""
        return bool(self.due or self.series_due)

    def relearn(self, unfinished: Callable[[str], Sequence[float]] | None = None) -> bool:
        """Relearn the queues and series that are due; True when the classes changed.
        `unfinished(q)` gives the service so far of queue q's jobs that started and have not
        finished, counted as censored needs (`kaplan_meier`). A series is learned against its
        queue's distribution (none yet: it waits)."""
        changed = self._relearn_queues(unfinished)
        changed = self._relearn_series() or changed
        if changed:
            self.classes = ServiceClasses(dict(self.tables), self.classes.grid,
                                          self.classes.fallback, dict(self.series_tables))
        return changed

    def _relearn_queues(self, unfinished: Callable[[str], Sequence[float]] | None) -> bool:
        changed = False
        grid = self.classes.grid
        for queue in sorted(self.due):
            self.fresh[queue] = 0
            needs, mass = kaplan_meier(self.samples[queue],
                                       unfinished(queue) if unfinished else ())
            self.distributions[queue] = (needs, mass)
            table = _classes(needs, mass, (0.0, *grid))
            if self.tables.get(queue) != table:
                self.tables[queue] = table
                changed = True
        self.due.clear()
        return changed

    def _relearn_series(self) -> bool:
        changed = False
        grid = self.classes.grid
        for key in sorted(self.series_due):
            distribution = self.distributions.get(key[0])
            record = self.series.get(key)
            if distribution is None or record is None:
                continue
            self.series_due.discard(key)
            table = series_classes(record.finished, record.outlived, *distribution,
                                   self.tables[key[0]], grid)
            if self.series_tables.get(key) != table:
                if table is None:
                    del self.series_tables[key]
                else:
                    self.series_tables[key] = table
                changed = True
        return changed

    def extend(self, finished: Iterable[tuple[str, float] | tuple[str, float, str]],
               unfinished: Mapping[str, Sequence[float]] | None = None) -> ServiceClasses:
        """Record many finished jobs at once, as (queue, device-seconds[, series]) in the
        order they finished (e.g. a store's history), and return the classes, learned with
        `unfinished[q]`, the service so far of queue q's jobs that have run and not finished,
        as censored needs (see `relearn`)."""
        for queue, device_seconds, *series in finished:
            self.samples.setdefault(queue, []).append(device_seconds)
            if series and series[0]:
                self._series_finished((queue, series[0]), device_seconds)
        for samples in self.samples.values():
            del samples[: max(0, len(samples) - self.keep)]
        self.due = {q for q, samples in self.samples.items() if len(samples) >= MIN_SAMPLES}
        censored = unfinished or {}
        self.relearn(lambda queue: censored.get(queue, ()))
        self.fresh = {q: 0 for q in self.samples}
        return self.classes
