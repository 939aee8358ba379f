"""What a job blocked by running work means for the jobs after it (the backfill point).

- `EASY_BACKFILL`: the first such job gets a reservation (`suan.sched.backfill`); later jobs
  run only where they cannot delay it, or on held devices when their estimate ends before it;
- `HEAD_OF_LINE`: strict order: every later job waits behind it;
- `GO_AROUND`: best effort: later jobs go around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from suan.jobs.model import Job
from suan.sched.backfill import make_reservation
from suan.sched.decisions import Pending, WaitCode
from suan.sched.gang import GangFit, GangMiss

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState
    from suan.sched.plugins import Attempt

BUSY_CODES = frozenset({WaitCode.CAPACITY, WaitCode.SHAPE})
"""Misses that running work causes: they get a backfill reservation, or block the line."""


@dataclass(frozen=True)
class GoAround:
    """Later jobs go around a blocked one."""

    name: str = "go-around"

    def retry(self, cycle: CycleState, job: Job, miss: GangMiss, attempt: Attempt
              ) -> GangFit | GangMiss:
        return miss

    def on_busy(self, cycle: CycleState, job: Job, verdict: Pending) -> Pending:
        return verdict


@dataclass(frozen=True)
class HeadOfLine(GoAround):
    """A blocked job stops every later one (`suan.sched.phases` tells them why)."""

    name: str = "head-of-line"

    def on_busy(self, cycle: CycleState, job: Job, verdict: Pending) -> Pending:
        cycle.blocked_by = job.name
        return verdict


@dataclass(frozen=True)
class EasyBackfill:
    """EASY backfill. `assumed_runtime_s`: the runtime assumed for a running job with no
    estimate (None: such jobs are never expected to end, see `suan.sched.backfill`)."""

    assumed_runtime_s: float | None = 86_400.0
    name: str = "easy"

    def retry(self, cycle: CycleState, job: Job, miss: GangMiss, attempt: Attempt
              ) -> GangFit | GangMiss:
        """Let a job that ends before the reservation use its held devices."""
        reservation = cycle.reservation
        assert reservation is not None
        if not reservation.admits_short(job, cycle.now):
            if miss.code in BUSY_CODES:
                return GangMiss(reservation.blocking_reason(), WaitCode.RESERVED)
            return miss
        return reservation.with_hold_lifted(cycle.ledger, attempt)

    def on_busy(self, cycle: CycleState, job: Job, verdict: Pending) -> Pending:
        if cycle.reservation is not None:
            return verdict
        cycle.reservation = make_reservation(cycle, job, cycle.ctx, self.assumed_runtime_s)
        if cycle.reservation is None:
            return verdict
        return Pending(job.name, cycle.reservation.own_reason(verdict.reason),
                       WaitCode.RESERVATION)


GO_AROUND = GoAround()
HEAD_OF_LINE = HeadOfLine()
EASY_BACKFILL = EasyBackfill()
