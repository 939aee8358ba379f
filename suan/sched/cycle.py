"""One scheduling cycle: `schedule(snapshot, pending, policy) -> Decisions`.

Pure: it reads the immutable snapshot and the pending jobs, never the clock or the disk, and the
same inputs give the same decisions. The steps, in order, for each pending job the order plugin
yields: skip if a strict head of line blocks it; reuse the verdict of an identical job shape
that already failed since capacity last grew; place the gang (admission + placement); if it
cannot be placed, try preemption (priority, reclaim), then give the first blocked job an EASY
backfill reservation that later jobs may not delay.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from suan.catalog import Catalog, default_catalog
from suan.cluster.snapshot import Allocation, Snapshot
from suan.jobs.model import Job
from suan.sched.backfill import Reservation, make_reservation
from suan.sched.budget import MAX_STARTS, check_max_starts
from suan.sched.decisions import Decisions, Pending, Start, WaitCode
from suan.sched.gang import GangFit, GangMiss, never_fits_job, place_gang
from suan.sched.hetero import rebalance
from suan.sched.ledger import Ledger
from suan.sched.order import running_level
from suan.sched.pending_index import PendingIndex, file_classes
from suan.sched.placement import PlaceContext
from suan.sched.policy import Policy, get_policy
from suan.sched.preempt import may_time_share, try_preemption
from suan.sched.quota import QuotaBook, request_vector
from suan.sched.service import LAS_CLASSES, ServiceClasses
from suan.sched.sweep import CLASS_WALK_FROM, Sweep, walk_jobs

MEMO_CODES = frozenset(
    {WaitCode.CAPACITY, WaitCode.SHAPE, WaitCode.CONSTRAINT, WaitCode.UNSCHEDULABLE,
     WaitCode.HEALTH, WaitCode.RESERVED, WaitCode.QUOTA}
)
"""Verdicts that hold for every job of the same shape (and queue, when quota decided it) until
capacity grows: within a cycle, free devices only shrink and quota usage only grows, except
through a committed preemption, which raises the ledger's generation."""
PREEMPTIBLE_CODES = frozenset({WaitCode.CAPACITY, WaitCode.SHAPE, WaitCode.QUOTA})
BUSY_CODES = frozenset({WaitCode.CAPACITY, WaitCode.SHAPE})
"""Misses that running work causes: they get a backfill reservation, or block the line."""


_new_tuple = tuple.__new__


@dataclass
class WorkingState:
    """What a cycle works on: the ledger of free resources and the quota book, both holding
    the snapshot's running allocations."""

    ledger: Ledger
    quota: QuotaBook

    @classmethod
    def build(cls, snapshot: Snapshot, catalog: Catalog) -> WorkingState:
        ledger = Ledger(snapshot, catalog)
        quota = QuotaBook(snapshot.queues, ledger.capacity)
        per_queue: dict[str, dict[str, float]] = {}
        for alloc in snapshot.running:
            total = per_queue.setdefault(alloc.job.queue, {})
            for resource, amount in allocation_usage(alloc, ledger).items():
                total[resource] = total.get(resource, 0.0) + amount
        for queue, usage in per_queue.items():
            quota.add(queue, usage)
        return cls(ledger, quota)


class Cycle:
    """The mutable state of one cycle. Use `schedule()`; this class is its implementation."""

    def __init__(self, snapshot: Snapshot, policy: Policy, catalog: Catalog, *,
                 state: WorkingState | None = None, live: dict[str, Allocation] | None = None,
                 max_starts: int = MAX_STARTS):
        """Derive the working state from the snapshot, or take `state` — a ledger and quota
        book that already hold exactly `snapshot.running` (a simulator keeps them between
        cycles; the cycle may change both, so pass copies or roll both back after) and,
        optionally, `live`: the snapshot's running allocations by job name (copied).
        `max_starts`: the cycle's budget (`suan.sched.budget`)."""
        self.snapshot = snapshot
        self.max_starts = check_max_starts(max_starts)
        self.policy = policy
        self.now = snapshot.now
        if state is None:
            state = WorkingState.build(snapshot, catalog)
        self.ledger, self.quota = state.ledger, state.quota
        self.live: dict[str, Allocation] = (
            dict(live) if live is not None else {a.job.name: a for a in snapshot.running})
        self.decisions = Decisions()
        self.reservation: Reservation | None = None
        self.blocked_by: str | None = None
        self.failed_shapes: dict[object, tuple[int, str, WaitCode]] = {}
        self.preemption_attempts = 0
        self.started_now: set[str] = set()
        self.victim_order: list[tuple[float, int, float, float, str, Allocation]] | None = None
        self.worst_levels: dict[tuple[str, int], int] | None = None
        self.preempt_failed: set[tuple[object, ...]] = set()
        self.levels: dict[tuple[str, float, str], int] = {}
        self.victim_summary: tuple[float, bool] | None = None

    @property
    def service(self) -> ServiceClasses:
        """The snapshot's learned service classes, or the LAS classes when it has none."""
        return self.snapshot.service or LAS_CLASSES

    # ------------------------------------------------------------------ driver
    def run(self, pending: Sequence[Job] | PendingIndex) -> Decisions:
        """Decide for the waiting jobs (none of them running): a list, or the index a caller
        keeps between cycles (read, not changed). An index, or a list of `CLASS_WALK_FROM`
        jobs or more, is walked class by class, a shorter list job by job; both walks make
        the same decisions (`suan.sched.sweep`)."""
        ctx = PlaceContext(seed=f"{self.now}:{len(pending)}", pending=pending)
        consider = partial(self.consider, ctx=ctx)
        if isinstance(pending, PendingIndex):
            Sweep(self, pending.live_classes(), self.max_starts, self.remembered,
                  consider).run()
        elif len(pending) >= CLASS_WALK_FROM:
            Sweep(self, file_classes(pending), self.max_starts, self.remembered,
                  consider).run()
        else:
            walk_jobs(self, pending, self.max_starts, self.remembered, consider)
        if self.policy.migrate and len(self.ledger.types_by_speed) > 1:
            rebalance(self, ctx)
        if self.reservation is not None:
            self.decisions.reservation = self.reservation.to_dict()
        return self.decisions

    def remembered(self, job: Job) -> Pending | None:
        """The verdict of an earlier job of the same shape, when it still holds: capacity has
        not grown since, and (for capacity or quota) this job could not preempt its way in.
        Behind a blocked head of line, a job that can never fit is told so, not told to wait."""
        if self.blocked_by is not None:
            never = never_fits_job(job, self.ledger)
            if never is not None:
                return Pending(job.name, never.reason, never.code)
            return Pending(job.name, f"waiting behind head-of-line job {self.blocked_by}",
                           WaitCode.HEAD_OF_LINE)
        key = job.shape_id
        found = self.failed_shapes.get(key) or self.failed_shapes.get((job.queue, key))
        if found is None or found[0] != self.ledger.generation:
            return None
        _, reason, code = found
        if code in PREEMPTIBLE_CODES and self._may_preempt(job):
            return None
        return _new_tuple(Pending, (job.name, reason, code))

    def consider(self, job: Job, ctx: PlaceContext) -> Pending | None:
        """Start the job or return why it waits (after `remembered` found nothing)."""
        outcome = self.place(job, ctx)
        if isinstance(outcome, GangFit):
            self.commit(job, outcome)
            return None
        return self.blocked(job, outcome, job.shape_id, ctx)

    def place(self, job: Job, ctx: PlaceContext) -> GangFit | GangMiss:
        """Place the gang, letting a job that ends before the reservation use its devices."""
        quota = self.quota if self.policy.quotas else None
        outcome = place_gang(job, self.ledger, quota, self.policy.placer, ctx)
        if isinstance(outcome, GangFit) or self.reservation is None:
            return outcome
        if not self.reservation.admits_short(job, self.now):
            if outcome.code in BUSY_CODES:
                return GangMiss(self.reservation.blocking_reason(), WaitCode.RESERVED)
            return outcome
        return self.reservation.with_hold_lifted(
            self.ledger, lambda: place_gang(job, self.ledger, quota, self.policy.placer, ctx)
        )

    def commit(self, job: Job, fit: GangFit, *, victims: tuple[str, ...] = ()) -> None:
        """Start `job` in this cycle: book its quota, count it live, record the start (marked
        backfilled when a reservation is held for an earlier job)."""
        for usage in fit.usage:
            self.quota.add(job.queue, usage)
        alloc = Allocation(job, fit.replicas, start_time=self.now)
        self.live[job.name] = alloc
        self.started_now.add(job.name)
        self.decisions.starts.append(
            Start(job, fit.replicas, fit.why, fit.accelerators, victims,
                  self.reservation is not None)
        )

    def blocked(
        self, job: Job, miss: GangMiss, key: int, ctx: PlaceContext
    ) -> Pending | None:
        """A job that did not fit: preempt for it, reserve for it, or record why it waits."""
        if miss.code in PREEMPTIBLE_CODES and self._may_preempt(job):
            self.preemption_attempts += 1
            if try_preemption(self, job, ctx):
                return None
            self.preempt_failed.add(self._preempt_key(job))
        verdict = Pending(job.name, miss.reason, miss.code)
        if miss.code in MEMO_CODES:
            memo_key = (job.queue, key) if miss.queue_dependent else key
            self.failed_shapes[memo_key] = (self.ledger.generation, verdict.reason, verdict.code)
        if miss.code not in BUSY_CODES:
            return verdict
        if self.policy.backfill and self.reservation is None:
            self.reservation = make_reservation(self, job, ctx)
            if self.reservation is not None:
                return Pending(job.name, self.reservation.own_reason(miss.reason),
                               WaitCode.RESERVATION)
        elif self.policy.head_of_line_blocks:
            self.blocked_by = job.name
        return verdict

    def _may_preempt(self, job: Job) -> bool:
        return (
            self.policy.preemption
            and self.preemption_attempts < self.policy.max_preemption_attempts
            and self._has_victims_for(job)
            and self._preempt_key(job) not in self.preempt_failed
        )

    def _preempt_key(self, job: Job) -> tuple[object, ...]:
        """Jobs with equal keys find the same victims: a failed attempt holds for all of them
        until capacity next grows (victims only leave within a cycle)."""
        level = self.job_level(job) if self.policy.order_preemption else 0
        return (job.shape_id, job.queue, job.priority, level, self.ledger.generation)

    def _has_victims_for(self, job: Job) -> bool:
        """Cheap test (from the snapshot) that some running job could be a victim."""
        lowest_priority, borrowers = self._victims()
        if job.priority > lowest_priority:
            return True
        spec = self.quota.specs.get(job.queue)
        if borrowers and spec is not None and not spec.unlimited:
            return True
        return self.policy.order_preemption and self._worst_level(job) > self.job_level(job)

    def _victims(self) -> tuple[float, bool]:
        """(lowest priority among preemptible running jobs, whether any of their queues
        borrows), computed once per cycle when a job first blocks."""
        if self.victim_summary is None:
            victims = [a.job for a in self.snapshot.running if a.job.preemptible]
            self.victim_summary = (
                min((j.priority for j in victims), default=float("inf")),
                any(self.quota.borrowing(q) for q in {j.queue for j in victims}),
            )
        return self.victim_summary

    def job_level(self, job: Job) -> int:
        """A waiting job's service class under the snapshot's learned classes."""
        key = (job.queue, job.attained_service_s, job.series)
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = self.service.level(*key)
        return level

    def _worst_level(self, job: Job) -> int:
        """The worst service class among preemptible running jobs of `job`'s queue and
        priority that have run long enough to be time-shared (computed once per cycle)."""
        if self.worst_levels is None:
            service = self.service
            worst: dict[tuple[str, int], int] = {}
            for alloc in self.snapshot.running:
                if alloc.job.preemptible and may_time_share(self, alloc):
                    key = (alloc.job.queue, alloc.job.priority)
                    level = running_level(service, alloc, self.now)
                    worst[key] = max(worst.get(key, level), level)
            self.worst_levels = worst
        return self.worst_levels.get((job.queue, job.priority), -1)


def allocation_usage(alloc: Allocation, ledger: Ledger) -> dict[str, float]:
    """Quota resources a running allocation holds (devices per accelerator type)."""
    per_type: dict[str, float] = {}
    index, nodes = ledger.index, ledger.nodes
    for replica in alloc.replicas:
        position = index.get(replica.node)
        if position is None:
            continue
        accelerator = nodes[position].accelerator
        if accelerator is not None:
            share = len(replica.devices) * replica.milli / 1000
            per_type[accelerator] = per_type.get(accelerator, 0.0) + share
    usage: dict[str, float] = {}
    for accelerator, amount in per_type.items():
        for resource, value in request_vector(accelerator, amount).items():
            usage[resource] = usage.get(resource, 0.0) + value
    return usage


def schedule(
    snapshot: Snapshot,
    pending: Sequence[Job] | PendingIndex,
    policy: Policy | str = "default",
    catalog: Catalog | None = None,
    *,
    max_starts: int = MAX_STARTS,
) -> Decisions:
    """One pure scheduling cycle over `snapshot` for the `pending` jobs under `policy`, making
    at most `max_starts` starts (`suan.sched.budget`). `pending` is a list, or a
    `PendingIndex` the caller keeps between cycles (jobs added and discarded as they come and
    go): the decisions are the same, without the work of filing a whole list each cycle. A
    pending job that `snapshot` shows running is ignored (and dropped from an index)."""
    chosen = get_policy(policy) if isinstance(policy, str) else policy
    if isinstance(pending, PendingIndex):
        for alloc in snapshot.running:
            pending.discard(alloc.job.name)
        waiting: Sequence[Job] | PendingIndex = pending
    else:
        running = {alloc.job.name for alloc in snapshot.running}
        waiting = [job for job in pending if job.name not in running]
    with collector_paused():
        return Cycle(snapshot, chosen, catalog or default_catalog(),
                     max_starts=max_starts).run(waiting)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector during a cycle: a cycle allocates many
    short-lived objects and no reference cycles, and full collections over the caller's
    large heaps (100,000 queued jobs) would otherwise add pauses of a large share of a cycle.
    The previous state is restored. The control plane's reconciler pauses it likewise while
    it reads the queue for a cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
