"""Preemption by priority, by reclaim and by service class, choosing victims that lose the
least work.

Candidates for a blocked job J:
- priority: preemptible running jobs of lower priority, in J's own queue or in a queue that is
  borrowing (a queue's guaranteed share is never taken by priority from another queue);
- reclaim: when J's queue has a quota, preemptible jobs of other queues that borrow beyond their
  guarantee and whose priority is not above J's;
- service class (policies with `order_preemption`): preemptible jobs of J's queue and priority
  whose service class (`suan.sched.service`, from the service they have attained by now) is
  strictly worse than J's, and whose current run has lasted at least the policy's
  `class_preemption_min_run_s` (time sharing, never thrashing).
Candidates are ordered by priority, then worst service class, then by work lost since their
last checkpoint (times devices), then youngest first; they are removed one by one on the
ledger until J fits. Then each removed job is put back, most valuable first, if J still fits
without removing it. J starts in the same cycle; the victims are reported as preemptions.

Degraded nodes are the last resort here too: victims are removed until J fits on ready nodes
only; only when no prefix of the candidates achieves that does J take the shortest prefix with
which it fits using degraded nodes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sched.decisions import Preemption
from suan.sched.gang import GangFit, place_gang
from suan.sched.ledger import Ledger
from suan.sched.order import running_level
from suan.sched.placement import PlaceContext

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState as Cycle

MAX_VICTIMS = 64
"""Most running jobs considered as victims for one blocked job."""

Candidate = tuple[float, float, float, str, Allocation, str]
Ranked = tuple[float, int, float, float, str, Allocation]


def _candidates(cycle: Cycle, job: Job) -> list[Candidate]:
    """Up to MAX_VICTIMS victims for `job`, cheapest first (see the module docstring)."""
    quota, ledger = cycle.quota, cycle.ledger
    spec = quota.specs.get(job.queue)
    can_reclaim = spec is not None and not spec.unlimited
    own_level = cycle.job_level(job) if cycle.policy.order_preemption else None
    borrowing: dict[str, bool] = {}
    found: list[Candidate] = []
    for priority, worse, lost, newest, name, alloc in _ranked(cycle):
        if priority > job.priority or len(found) == MAX_VICTIMS:
            break
        same = priority == job.priority
        if name not in cycle.live or (same and not can_reclaim and own_level is None):
            continue
        other = alloc.job
        if other.queue not in borrowing:
            borrowing[other.queue] = quota.borrowing(other.queue)
        lends = borrowing[other.queue]
        if priority < job.priority and (other.queue == job.queue or lends):
            kind = "priority"
        elif can_reclaim and other.queue != job.queue and lends:
            kind = "reclaim"
        elif (own_level is not None and same and other.queue == job.queue
              and -worse > own_level and may_time_share(cycle, alloc)):
            kind = "class"
        else:
            continue
        first = alloc.replicas[0] if alloc.replicas else None
        if first is None or not job.accepts(ledger.nodes[ledger.index[first.node]].accelerator):
            continue
        found.append((priority, lost, newest, name, alloc, kind))
    return found


def may_time_share(cycle: Cycle, alloc: Allocation) -> bool:
    """Whether a running job has run long enough in its current run to be preempted by a job
    of its own queue and priority (the policy's `class_preemption_min_run_s`)."""
    return cycle.now - alloc.start_time >= cycle.policy.class_preemption_min_run_s


def _ranked(cycle: Cycle) -> list[Ranked]:
    """The snapshot's preemptible running jobs in victim order — lowest priority, then worst
    service class (under `order_preemption`), then least work lost since the last checkpoint
    (times devices), then youngest — computed once per cycle (jobs started in the cycle are
    never victims)."""
    if cycle.victim_order is None:
        now = cycle.now
        service = cycle.service if cycle.policy.order_preemption else None
        cycle.victim_order = sorted(
            (alloc.job.priority, -running_level(service, alloc, now) if service else 0,
             alloc.lost_work_s(now) * alloc.job.devices, -alloc.start_time, alloc.job.name,
             alloc)
            for alloc in cycle.snapshot.running if alloc.job.preemptible
        )
    return cycle.victim_order


def _fits(cycle: Cycle, job: Job, ctx: PlaceContext, degraded: bool) -> GangFit | None:
    """Whether the job fits now (on ready nodes only unless `degraded`); leaves the ledger
    unchanged."""
    quota = cycle.quota if cycle.policy.quotas else None
    mark = cycle.ledger.savepoint()
    outcome = place_gang(job, cycle.ledger, quota, cycle.policy.placer, ctx, degraded=degraded)
    cycle.ledger.rollback(mark)
    return outcome if isinstance(outcome, GangFit) else None


def _remove(cycle: Cycle, alloc: Allocation, sign: float) -> None:
    from suan.sched.cycle import allocation_usage

    usage = allocation_usage(alloc, cycle.ledger)
    if sign < 0:
        cycle.ledger.release_allocation(alloc)
    else:
        cycle.ledger.apply_allocation(alloc)
    cycle.quota.add(alloc.job.queue, usage, sign)


def try_preemption(cycle: Cycle, job: Job, ctx: PlaceContext) -> bool:
    """Preempt the fewest, cheapest victims that let `job` start; False if none can.

    A job is not searched when a job of its shape, queue and service class and a priority
    no lower found no victims among all its candidates in this cycle, with capacity not
    grown since (`CycleState.failed_priorities`): its own candidates are among those (a
    victim is of a lower priority, or of the same only where it is for the other job too),
    and jobs of one shape fit alike, so removing fewer leaves it unplaced too."""
    failed = cycle.failed_priorities
    level = cycle.job_level(job) if cycle.policy.order_preemption else 0
    key = (job.shape_id, job.queue, level, cycle.ledger.generation)
    if job.priority <= failed.get(key, -math.inf):
        return False
    candidates = _candidates(cycle, job)
    if not candidates:
        failed[key] = max(failed.get(key, -math.inf), job.priority)
        return False
    ledger = cycle.ledger
    mark = ledger.savepoint()
    found = _remove_until_fit(cycle, job, ctx, candidates)
    if found is None:
        ledger.rollback(mark)
        if len(candidates) < MAX_VICTIMS:
            failed[key] = max(failed.get(key, -math.inf), job.priority)
        return False
    removed, degraded = found
    needed = _reprieve(cycle, job, ctx, removed, degraded)
    quota = cycle.quota if cycle.policy.quotas else None
    final = place_gang(job, ledger, quota, cycle.policy.placer, ctx, degraded=degraded)
    assert isinstance(final, GangFit), "job must fit after removing its victims"
    ledger.grew()
    for candidate in needed:
        cycle.live.pop(candidate[3], None)
        cycle.decisions.preemptions.append(Preemption(candidate[3], _reason(cycle, job, candidate),
                                                      job.name))
    cycle.commit(job, final, victims=tuple(c[3] for c in needed))
    return True


def _remove_until_fit(cycle: Cycle, job: Job, ctx: PlaceContext, candidates: list[Candidate]
                      ) -> tuple[list[Candidate], bool] | None:
    """Remove candidates in order until `job` fits on ready nodes only: (those removed, False).
    When it first fits only by using degraded nodes and the remaining candidates cannot change
    that (removing them all too leaves no fit on ready nodes alone), stop there: (those
    removed, True). None, with every candidate put back, when it never fits."""
    ledger = cycle.ledger
    removed: list[Candidate] = []
    first_fit: int | None = None  # candidates removed when it first fitted using degraded nodes
    for index, candidate in enumerate(candidates):
        _remove(cycle, candidate[4], -1.0)
        removed.append(candidate)
        anywhere = first_fit is None  # after a fit on degraded nodes, only ready ones count
        fit = _fits(cycle, job, ctx, anywhere)
        if fit is None:
            continue
        if not anywhere or not ledger.any_degraded or not _on_degraded(fit, ledger):
            return removed, False
        first_fit = len(removed)
        if not _fits_on_ready_without(cycle, job, ctx, candidates[index + 1:]):
            return removed, True
    keep = len(removed) if first_fit is None else first_fit
    for candidate in reversed(removed[keep:] if first_fit is not None else removed):
        _remove(cycle, candidate[4], +1.0)
    return (removed[:keep], True) if first_fit is not None else None


def _fits_on_ready_without(cycle: Cycle, job: Job, ctx: PlaceContext, rest: list[Candidate]
                           ) -> bool:
    """Whether `job` would fit on ready nodes only with every job of `rest` removed as well;
    leaves the ledger and the quota as they were."""
    for candidate in rest:
        _remove(cycle, candidate[4], -1.0)
    fits = _fits(cycle, job, ctx, False) is not None
    for candidate in reversed(rest):
        _remove(cycle, candidate[4], +1.0)
    return fits


def _on_degraded(fit: GangFit, ledger: Ledger) -> bool:
    """True when some replica of `fit` sits on a degraded node."""
    offset, index = ledger.offset, ledger.index
    return any(offset[index[replica.node]] for replica in fit.replicas)


def _reprieve(cycle: Cycle, job: Job, ctx: PlaceContext, removed: list[Candidate],
              degraded: bool) -> list[Candidate]:
    """Put back every removed job the preemptor can do without, most valuable first."""
    needed: list[Candidate] = []
    for candidate in reversed(removed):
        _remove(cycle, candidate[4], +1.0)
        if _fits(cycle, job, ctx, degraded):
            continue
        _remove(cycle, candidate[4], -1.0)
        needed.append(candidate)
    return needed


def duration_text(seconds: float) -> str:
    """A short duration: '45s', '8m', '2h05m'."""
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _reason(cycle: Cycle, job: Job, candidate: Candidate) -> str:
    priority, _lost, _, _name, alloc, kind = candidate
    lost_s = alloc.lost_work_s(cycle.now)
    if kind == "priority":
        return (
            f"preempted for job {job.name} (priority {job.priority} > {priority:g}); loses "
            f"{lost_s:.0f}s of work since its last checkpoint, the least among candidates"
        )
    if kind == "class":
        service, victim = cycle.service, alloc.job
        ran = cycle.now - alloc.start_time
        minimum = cycle.policy.class_preemption_min_run_s
        return (
            f"preempted by {job.name} of the same queue and priority after it ran "
            f"{duration_text(ran)} >= min {duration_text(minimum)} (time sharing): "
            f"{job.name} is in service class {cycle.job_level(job)}, this job has reached class "
            f"{running_level(service, alloc, cycle.now)} "
            f"({service.describe(victim.queue, victim.series)}); "
            f"loses {lost_s:.0f}s of work since its last checkpoint"
        )
    return (
        f"reclaimed for queue {job.queue}, which is within its guarantee; queue "
        f"{alloc.job.queue} was borrowing; loses {lost_s:.0f}s since its last checkpoint"
    )
