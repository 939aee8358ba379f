"""The scheduler's extension points, as small interfaces a policy composes.

A `Policy` (`suan.sched.policy`) names one plugin per extension point and a tuple of phases;
a cycle runs the phases in that order over one `CycleState` (`suan.sched.cyclestate`):

- `Phase`: one step of a cycle (`suan.sched.phases`: rank, queue, rebalance);
- order: `suan.sched.order.OrderPlugin` (a sort key), with optional DRF interleaving;
- `Admit`: the quota book a placement is admitted against (`suan.sched.admit`);
- filter + score: `suan.sched.placement.Placer` (proposes nodes that pass the ledger's
  filters and scores them);
- reserve: gang placement, all replicas or none (`suan.sched.gang.place_gang`); it is the same
  for every policy, since no policy may start part of a gang;
- `Preempt`: whether and how a blocked job preempts running ones (`suan.sched.preemption`);
- `WhenBlocked`: what a job blocked by running work does to later jobs — EASY backfill,
  strict head of line, or nothing (`suan.sched.blocking`);
- rebalance: a phase (`suan.sched.phases.REBALANCE`, `suan.sched.hetero`);
- `Rank`: an optional priority view of every job from its attained service and remaining
  time (`suan.sched.rank`), which ordering and preemption then compare instead of the
  user's priority.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sched.decisions import Pending

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState
    from suan.sched.gang import GangFit, GangMiss
    from suan.sched.quota import QuotaBook

Attempt = Callable[[], "GangFit | GangMiss"]
"""A placement of one job on the cycle's ledger as it stands."""


class Phase(Protocol):
    """One step of a cycle: reads and writes the cycle's scratchpad."""

    name: str

    def run(self, cycle: CycleState) -> None: ...


class Admit(Protocol):
    """Admission: the quota book every placement is checked against, or None for none."""

    name: str

    def book(self, cycle: CycleState) -> QuotaBook | None: ...


class Preempt(Protocol):
    """Preemption for a job that did not fit."""

    name: str
    by_class: bool
    """Whether a job may preempt a running job of its own queue and priority in a worse
    service class (time sharing)."""
    class_min_run_s: float
    """How long such a running job must have run first."""

    def may_preempt(self, cycle: CycleState, job: Job) -> bool:
        """Cheap test that an attempt could succeed and has not already failed."""
        ...

    def preempt_for(self, cycle: CycleState, job: Job) -> bool:
        """Preempt victims and start `job` (True), or change nothing (False)."""
        ...


class WhenBlocked(Protocol):
    """What a job blocked by running work (no room now) means for the jobs after it."""

    name: str

    def retry(self, cycle: CycleState, job: Job, miss: GangMiss, attempt: Attempt
              ) -> GangFit | GangMiss:
        """A later job's placement, called only while `cycle.reservation` is held."""
        ...

    def on_busy(self, cycle: CycleState, job: Job, verdict: Pending) -> Pending:
        """Called for a job that waits for capacity; returns its verdict."""
        ...


class Rank(Protocol):
    """A priority view: the priority ordering and preemption compare, from each job's
    attained service (and, for remaining-time ranks, its duration or runtime estimate)."""

    name: str
    continuous: bool
    """Whether a running job's rank changes continuously as it runs (else only when its
    attained service reaches `next_change`)."""

    def waiting(self, job: Job) -> int:
        """The rank of a waiting job (its service so far is `job.attained_service_s`)."""
        ...

    def running(self, alloc: Allocation, now: float) -> int:
        """The rank of a running job at `now` (its service grows while it runs)."""
        ...

    def next_change(self, job: Job, attained_s: float) -> float | None:
        """The attained service at which a running job's rank next changes, for a rank that
        changes in steps (None: never, or the rank is continuous); callers that run cycles
        on events wake then."""
        ...
