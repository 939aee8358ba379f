"""The phases a policy's cycle runs, in the order its `Policy.phases` lists them.

- `RANK`: give the cycle each job's view under the policy's rank plugin (`suan.sched.rank`):
  waiting and running jobs with their priority replaced by their rank.
- `QUEUE`: for each pending job in the policy's order (class by class over a long queue,
  `suan.sched.sweep`, until the cycle's budget of starts): skip if a strict head of line blocks
  it; reuse the verdict of an identical job shape that already failed since capacity last
  grew; place the gang (admission + filter/score + gang reserve); if it cannot be placed,
  try the preemption plugin, then hand the miss to the blocking plugin (EASY backfill
  reservation, strict head of line, or nothing).
- `REBALANCE`: move running jobs with per-type speeds to faster types (`suan.sched.hetero`),
  when the cluster has more than one type.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sched.blocking import BUSY_CODES
from suan.sched.cyclestate import CycleState
from suan.sched.decisions import Pending, WaitCode
from suan.sched.gang import GangFit, GangMiss, never_fits_job, place_gang
from suan.sched.hetero import rebalance
from suan.sched.pending_index import PendingIndex, file_classes
from suan.sched.plugins import Rank
from suan.sched.sweep import CLASS_WALK_FROM, Sweep, walk_jobs

MEMO_CODES = frozenset(
    {WaitCode.CAPACITY, WaitCode.SHAPE, WaitCode.CONSTRAINT, WaitCode.UNSCHEDULABLE,
     WaitCode.HEALTH, WaitCode.RESERVED, WaitCode.QUOTA}
)
"""Verdicts that hold for every job of the same shape (and queue, when quota decided it) until
capacity grows: within a cycle, free devices only shrink and quota usage only grows, except
through a committed preemption, which raises the ledger's generation."""
PREEMPTIBLE_CODES = frozenset({WaitCode.CAPACITY, WaitCode.SHAPE, WaitCode.QUOTA})

_new_tuple = tuple.__new__


@dataclass(frozen=True)
class RankPhase:
    """Replace every job's priority by its rank for the rest of the cycle."""

    name: str = "rank"

    def run(self, cycle: CycleState) -> None:
        rank = cycle.policy.rank
        if rank is None:
            return
        views = cycle.views if cycle.views is not None else RankViews()
        originals: dict[str, Job] = {}
        pending = list(cycle.pending)
        held = views.waiting
        for index, job in enumerate(pending):
            kept = held.get(job.name)  # a waiting job's rank is fixed while it waits
            view = kept[2] if kept is not None and kept[0] is job else \
                _waiting_view(views, rank, job)
            if view is not job:
                pending[index] = view
                originals[job.name] = job
        cycle.pending = pending
        if rank.continuous:  # every running job's rank moved: rank them once victims matter
            cycle.unranked = (views, rank)
            cycle.originals = originals
            cycle.victim_counts = None
            return
        if views.booked:
            running = _rank_booked(cycle, views, rank, originals)
        else:
            running = _rank_each(cycle, views, rank, originals)
        if originals:
            cycle.snapshot = replace(cycle.snapshot, running=running)
            cycle.originals = originals
            cycle.victim_counts = None


def rank_running(cycle: CycleState) -> None:
    """Give the cycle the views of its running jobs that a continuous rank left for later
    (`CycleState.unranked`). Only preemption reads a running job's rank, so the rank phase of a
    rank that changes as jobs run (SRTF) leaves them until the cycle first asks whether a job
    may preempt: a cycle that never gets there ranks none. Calling it again does nothing."""
    if cycle.unranked is None:
        return
    views, rank = cycle.unranked
    cycle.unranked = None
    originals = dict(cycle.originals or {})
    running = _rank_each(cycle, views, rank, originals)
    if originals:
        cycle.snapshot = replace(cycle.snapshot, running=running)
        cycle.originals = originals


def _rank_each(cycle: CycleState, views: RankViews, rank: Rank, originals: dict[str, Job]
               ) -> tuple[Allocation, ...]:
    """The snapshot's running allocations as the cycle sees them, each looked at (a view is
    reused while its rank cannot have changed); records the changed ones in `originals` and
    in `cycle.live`."""
    now, live = cycle.now, cycle.live
    running = list(cycle.snapshot.running)
    for index, alloc in enumerate(running):
        held = views.running.get(alloc.job.name)  # still valid until its rank may change
        ranked = held[2] if held is not None and held[0] is alloc and now < held[3] else \
            _running_view(views, rank, alloc, now)
        if ranked is not alloc:
            name = alloc.job.name
            originals[name] = alloc.job
            running[index] = ranked
            if name in live:
                live[name] = ranked
    return tuple(running)


def _rank_booked(cycle: CycleState, views: RankViews, rank: Rank, originals: dict[str, Job]
                 ) -> tuple[Allocation, ...]:
    """As `_rank_each`, for a caller that tells `views` which jobs it booked or released
    since the last cycle (`RankViews.note`): only those, and the jobs whose rank may have
    changed since, are ranked again; the rest keep their views."""
    now, live, held, changed = cycle.now, cycle.live, views.running, views.changed
    if views.rank is not rank:
        views.forget(rank, live)
    due, heap = views.dirty, views.due
    while heap and heap[0][0] <= now:
        due.add(heapq.heappop(heap)[1])
    for name in due:
        alloc = live.get(name)
        if alloc is None:
            held.pop(name, None)
            changed.pop(name, None)
            continue
        view = _running_view(views, rank, alloc, now)
        if view is alloc:
            changed.pop(name, None)
        else:
            changed[name] = view
        until = held[name][3]
        if until != math.inf:
            heapq.heappush(heap, (until, name))
    due.clear()
    running = cycle.snapshot.running
    if not changed:
        return running
    for name, view in changed.items():
        originals[name] = held[name][0].job
        live[name] = view
    return tuple(map(changed.get, map(_NAME, running), running))


_NAME = attrgetter("job.name")


@dataclass
class RankViews:
    """The views a rank phase made, by job name. Waiting: (the caller's job, its rank, the
    view). Running: (the caller's allocation, its rank, the view, the time before which its
    rank cannot change). A caller that keeps them between cycles (`WarmLedger`) spares
    recomputing ranks and copying jobs whose rank did not change; a view is reused only for
    the very object it was made from.

    A caller that also notes every allocation it books or releases (`note`; `booked` True)
    lets a rank that changes in steps look only at those and at the jobs whose rank may have
    changed (`due`, a heap of (time, name)), not at every running job each cycle; `changed`
    holds the running jobs whose view differs from them."""

    waiting: dict[str, tuple[Job, int, Job]] = field(default_factory=dict)
    running: dict[str, tuple[Allocation, int, Allocation, float]] = field(
        default_factory=dict)
    booked: bool = False
    rank: Rank | None = None
    dirty: set[str] = field(default_factory=set)
    due: list[tuple[float, str]] = field(default_factory=list)
    changed: dict[str, Allocation] = field(default_factory=dict)

    def note(self, name: str) -> None:
        """The caller booked or released the allocation of job `name`."""
        self.dirty.add(name)

    def forget(self, rank: Rank, live: Mapping[str, Allocation]) -> None:
        """Start over for `rank`, with every job of `live` to be ranked."""
        self.running.clear()
        self.changed.clear()
        self.due.clear()
        self.dirty = set(live)
        self.rank = rank


def _waiting_view(views: RankViews, rank: Rank, job: Job) -> Job:
    """`job` as the cycle sees it (itself when its rank is its priority), kept in `views`."""
    priority = rank.waiting(job)
    view = job if priority == job.priority else job.with_priority(priority)
    views.waiting[job.name] = (job, priority, view)
    return view


def _running_view(views: RankViews, rank: Rank, alloc: Allocation, now: float) -> Allocation:
    """`alloc` as the cycle sees it at `now` (itself when its rank is its priority), kept in
    `views` with the time until which that rank holds."""
    priority = rank.running(alloc, now)
    kept = views.running.get(alloc.job.name)
    if priority == alloc.job.priority:
        view = alloc
    elif kept is not None and kept[0] is alloc and kept[1] == priority:
        view = kept[2]
    else:
        view = Allocation(alloc.job.with_priority(priority), alloc.replicas, alloc.start_time,
                          alloc.last_checkpoint_s)
    views.running[alloc.job.name] = (alloc, priority, view, _holds_until(rank, alloc, now))
    return view


def _holds_until(rank: Rank, alloc: Allocation, now: float) -> float:
    """A time before which a running job's rank cannot change (`now` itself, so never
    reused, for a rank that changes continuously): a microsecond before its service reaches
    the rank's next bound."""
    if rank.continuous:
        return now
    attained = alloc.attained_at(now)
    bound = rank.next_change(alloc.job, attained)
    devices = alloc.job.devices
    if bound is None or devices <= 0:
        return math.inf
    return now + (bound - attained) / devices - 1e-6


@dataclass(frozen=True)
class QueuePhase:
    """Place the pending jobs in the policy's order (see the module docstring)."""

    name: str = "queue"

    def run(self, cycle: CycleState) -> None:
        """An index, or a list of `CLASS_WALK_FROM` jobs or more, is walked class by class,
        a shorter list job by job; both walks make the same decisions (`suan.sched.sweep`),
        and stop considering jobs at the cycle's budget of starts."""
        pending = cycle.pending
        judge, place_job = partial(remembered, cycle), partial(consider, cycle)
        if isinstance(pending, PendingIndex):
            Sweep(cycle, pending.live_classes(), cycle.max_starts, judge, place_job).run()
        elif len(pending) >= CLASS_WALK_FROM:
            Sweep(cycle, file_classes(pending), cycle.max_starts, judge, place_job).run()
        else:
            walk_jobs(cycle, pending, cycle.max_starts, judge, place_job)


def remembered(cycle: CycleState, job: Job) -> Pending | None:
    """The verdict of an earlier job of the same shape, when it still holds: capacity has
    not grown since, and (for capacity or quota) this job could not preempt its way in.
    Behind a blocked head of line, a job that can never fit is told so, not told to wait."""
    if cycle.blocked_by is not None:
        never = never_fits_job(job, cycle.ledger)
        if never is not None:
            return Pending(job.name, never.reason, never.code)
        return Pending(job.name, f"waiting behind head-of-line job {cycle.blocked_by}",
                       WaitCode.HEAD_OF_LINE)
    key = job.shape_id
    failed = cycle.failed_shapes
    found = failed.get(key) or failed.get((job.queue, key))
    if found is None or found[0] != cycle.ledger.generation:
        return None
    _, reason, code = found
    preempt = cycle.policy.preempt
    if code in PREEMPTIBLE_CODES and preempt is not None and preempt.may_preempt(cycle, job):
        return None
    return _new_tuple(Pending, (job.name, reason, code))


def consider(cycle: CycleState, job: Job) -> Pending | None:
    """Start the job or return why it waits (after `remembered` found nothing)."""
    outcome = place(cycle, job)
    if isinstance(outcome, GangFit):
        cycle.commit(job, outcome)
        return None
    return blocked(cycle, job, outcome)


def place(cycle: CycleState, job: Job) -> GangFit | GangMiss:
    """Place the gang; while a reservation is held, the blocking plugin decides whether the
    job may use its devices."""
    policy = cycle.policy
    quota = policy.admit.book(cycle)
    outcome = place_gang(job, cycle.ledger, quota, policy.placer, cycle.ctx)
    if isinstance(outcome, GangFit) or cycle.reservation is None:
        return outcome
    return policy.blocked.retry(
        cycle, job, outcome,
        lambda: place_gang(job, cycle.ledger, quota, policy.placer, cycle.ctx))


def blocked(cycle: CycleState, job: Job, miss: GangMiss) -> Pending | None:
    """A job that did not fit: preempt for it, or record why it waits (remembered for its
    shape) and let the blocking plugin act on a miss caused by running work."""
    preempt = cycle.policy.preempt
    if (miss.code in PREEMPTIBLE_CODES and preempt is not None
            and preempt.may_preempt(cycle, job) and preempt.preempt_for(cycle, job)):
        return None
    verdict = Pending(job.name, miss.reason, miss.code)
    if miss.code in MEMO_CODES:
        memo_key = (job.queue, job.shape_id) if miss.queue_dependent else job.shape_id
        cycle.failed_shapes[memo_key] = (cycle.ledger.generation, verdict.reason, verdict.code)
    if miss.code not in BUSY_CODES:
        return verdict
    return cycle.policy.blocked.on_busy(cycle, job, verdict)


@dataclass(frozen=True)
class RebalancePhase:
    """Move running jobs to faster types, when the cluster has more than one."""

    name: str = "rebalance"

    def run(self, cycle: CycleState) -> None:
        if len(cycle.ledger.types_by_speed) > 1:
            rebalance(cycle, cycle.ctx)


RANK = RankPhase()
QUEUE = QueuePhase()
REBALANCE = RebalancePhase()
PHASES = {phase.name: phase for phase in (RANK, QUEUE, REBALANCE)}
