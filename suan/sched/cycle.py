"""The scheduler's seam: `schedule(snapshot, pending, policy, state) -> (decisions, state)`.

Pure: a cycle reads the immutable snapshot, the pending jobs and the carried state, never the
clock, the disk, a global catalog (the snapshot names its own) or interpreter switches (a
caller that wants the garbage collector paused around a cycle uses `collector_paused`), and
the same inputs give the same decisions. It builds a `CycleState` (the typed per-cycle
scratchpad) and runs the policy's phases over it in the order `Policy.phases` lists them
(`suan.sched.phases`). What outlives the cycle is the returned `CarriedState`.

`decide(snapshot, pending, policy)` is one cycle from a fresh state, for callers that keep
none (a one-off `suan schedule`, tests). A caller that keeps the working ledger between cycles
for speed uses `suan.sched.warm.WarmLedger`, which runs the same phases.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from suan.catalog import Catalog
from suan.cluster.snapshot import Allocation, Snapshot
from suan.jobs.model import Job
from suan.sched.budget import MAX_STARTS, check_max_starts
from suan.sched.carried import CarriedState
from suan.sched.cyclestate import CycleState
from suan.sched.decisions import Decisions
from suan.sched.ledger import Ledger
from suan.sched.pending_index import PendingIndex
from suan.sched.placement import PlaceContext
from suan.sched.policy import Policy, get_policy
from suan.sched.quota import QuotaBook
from suan.sched.usage import allocation_usage

__all__ = ["CycleState", "WorkingState", "allocation_usage", "collector_paused", "decide",
           "new_cycle", "run_phases", "schedule"]


@dataclass
class WorkingState:
    """What a cycle works on: the ledger of free resources and the quota book, both holding
    the snapshot's running allocations."""

    ledger: Ledger
    quota: QuotaBook

    @classmethod
    def build(cls, snapshot: Snapshot, catalog: Catalog | None = None) -> WorkingState:
        """From the snapshot, with its catalog unless `catalog` is given."""
        ledger = Ledger(snapshot, catalog or snapshot.catalog)
        quota = QuotaBook(snapshot.queues, ledger.capacity)
        per_queue: dict[str, dict[str, float]] = {}
        for alloc in snapshot.running:
            total = per_queue.setdefault(alloc.job.queue, {})
            for resource, amount in allocation_usage(alloc, ledger).items():
                total[resource] = total.get(resource, 0.0) + amount
        for queue, usage in per_queue.items():
            quota.add(queue, usage)
        return cls(ledger, quota)


def new_cycle(snapshot: Snapshot, pending: Sequence[Job] | PendingIndex, policy: Policy,
              working: WorkingState, live: dict[str, Allocation],
              max_starts: int = MAX_STARTS) -> CycleState:
    """The scratchpad of one cycle over `working` (which holds exactly `snapshot.running`;
    the cycle changes it) and `live` (those allocations by job name; the cycle changes it),
    making at most `max_starts` starts (`suan.sched.budget`)."""
    ctx = PlaceContext(seed=f"{snapshot.now}:{len(pending)}", pending=pending)
    return CycleState(snapshot, policy, working.ledger, working.quota, live, ctx,
                      pending=pending, max_starts=check_max_starts(max_starts))


def run_phases(cycle: CycleState) -> Decisions:
    """Run the policy's phases in order over `cycle`; its decisions, naming the caller's
    jobs."""
    for phase in cycle.policy.phases:
        phase.run(cycle)
    decisions = cycle.decisions
    if cycle.reservation is not None:
        decisions.reservation = cycle.reservation.to_dict()
    if cycle.originals is not None:
        _name_callers_jobs(decisions, cycle.originals)
    return decisions


def _name_callers_jobs(decisions: Decisions, originals: Mapping[str, Job]) -> None:
    """Starts name the caller's Job, not the cycle's view of it (see `suan.sched.rank`)."""
    starts = []
    for start in decisions.starts:
        own = originals.get(start.job.name)
        starts.append(start if own is None or own is start.job else replace(start, job=own))
    decisions.starts = starts


def schedule(
    snapshot: Snapshot,
    pending: Sequence[Job] | PendingIndex,
    policy: Policy | str = "default",
    state: CarriedState | None = None,
    *,
    max_starts: int = MAX_STARTS,
) -> tuple[Decisions, CarriedState]:
    """One pure scheduling cycle over `snapshot` for the `pending` jobs under `policy`,
    given what earlier cycles carried (`state`; None for a first cycle), making at most
    `max_starts` starts (`suan.sched.budget`). Returns the decisions and the state to hand
    the next cycle. Jobs of `pending` that already run in the snapshot are ignored.

    `pending` is a list, or a `PendingIndex` the caller keeps between cycles (adding jobs
    that come to wait, discarding those that start or leave): the decisions are the same,
    without filing the whole queue every cycle; running jobs are dropped from the index."""
    chosen = get_policy(policy) if isinstance(policy, str) else policy
    running = snapshot.running_by_name
    if isinstance(pending, PendingIndex):
        for name in running:
            pending.discard(name)
        waiting: Sequence[Job] | PendingIndex = pending
    else:
        waiting = [job for job in pending if job.name not in running]
    cycle = new_cycle(snapshot, waiting, chosen, WorkingState.build(snapshot), dict(running),
                      max_starts)
    decisions = run_phases(cycle)
    return decisions, (state or CarriedState()).after_cycle(decisions)


def decide(snapshot: Snapshot, pending: Sequence[Job] | PendingIndex,
           policy: Policy | str = "default", *, max_starts: int = MAX_STARTS) -> Decisions:
    """The decisions of one cycle from a fresh state (`schedule` with no state kept)."""
    return schedule(snapshot, pending, policy, max_starts=max_starts)[0]


@contextmanager
def collector_paused() -> Iterator[None]:
    """For callers: pause Python's cyclic garbage collector around a cycle. A cycle allocates
    many short-lived objects and no reference cycles, and full collections over a caller's
    large heap (100,000 queued jobs) would otherwise add pauses of a large share of a cycle.
    The previous state is restored. `schedule()` itself never touches the collector."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
