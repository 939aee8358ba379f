"""Rank plugins: a priority view of every job, from scheduler concepts alone.

A policy with a rank (`Policy.rank`) has its first phase (`suan.sched.phases.RANK`) give the
cycle a view of each waiting and running job whose priority is its rank; ordering by
priority and preemption by priority then compare ranks, and the user's priority is not
consulted. Decisions name the caller's own jobs.

- `LasRank` (Tiresias-style preemptive discretised 2D-LAS): rank = -(how many of the
  thresholds `LAS_THRESHOLDS_S` the job's attained device-seconds have passed). A waiting
  job's service is `Job.attained_service_s`; a running job's grows by its devices for every
  second of its current run (`Allocation.attained_at`), so it is demoted when it crosses a
  threshold and a job of a better level then preempts it.
- `SrtfRank` (preemptive shortest remaining time first): rank = -(seconds of work left,
  rounded up): the job's duration (an oracle `Job.duration_s` in a simulator), else its
  runtime estimate, less the seconds it has run (attained device-seconds over its devices).
  A job with neither ranks below every job with one.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sched.order import LAS_THRESHOLDS_S

UNKNOWN_REMAINING_RANK = -(10**12)
"""The remaining-time rank of a job with no duration or estimate: below any job with one
(10^12 s is beyond any run)."""


@dataclass(frozen=True)
class LasRank:
    """Discretised least attained service (see the module docstring)."""

    thresholds: tuple[float, ...] = LAS_THRESHOLDS_S
    name: str = "las"
    continuous: bool = False

    def level(self, attained_s: float) -> int:
        """Minus the number of thresholds `attained_s` has reached (thresholds ascend)."""
        return -bisect_right(self.thresholds, attained_s)

    def waiting(self, job: Job) -> int:
        return self.level(job.attained_service_s)

    def running(self, alloc: Allocation, now: float) -> int:
        return self.level(alloc.attained_at(now))

    def next_change(self, job: Job, attained_s: float) -> float | None:
        for limit in self.thresholds:
            if attained_s < limit - 1e-6:
                return limit
        return None


@dataclass(frozen=True)
class SrtfRank:
    """Shortest remaining time first (see the module docstring)."""

    name: str = "srtf"
    continuous: bool = True

    def waiting(self, job: Job) -> int:
        return _remaining_rank(job, job.attained_service_s)

    def running(self, alloc: Allocation, now: float) -> int:
        return _remaining_rank(alloc.job, alloc.attained_at(now))

    def next_change(self, job: Job, attained_s: float) -> float | None:
        return None


def remaining_s(job: Job, attained_s: float) -> float:
    """Seconds of work left: duration (else runtime estimate) less the seconds run so far
    (`attained_s` device-seconds over the job's devices); inf with neither."""
    total = job.duration_s if job.duration_s is not None else job.runtime_estimate_s
    if total is None:
        return math.inf
    return max(0.0, total - attained_s / (job.devices or 1.0))


def _remaining_rank(job: Job, attained_s: float) -> int:
    left = remaining_s(job, attained_s)
    return UNKNOWN_REMAINING_RANK if left == math.inf else -math.ceil(left)
