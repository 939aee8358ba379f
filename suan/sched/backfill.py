"""EASY backfill: the first job blocked for capacity gets a reservation; later jobs may run
only where they cannot delay it.

The reservation is found by releasing running allocations in order of their expected end
(start + runtime estimate, else + time limit, or the policy's assumed runtime when a job
has neither: `Job.run_bound_s`) on the ledger
until the blocked job fits; that end is its reserved start time, and the devices it would use
are held; where the cluster has degraded nodes, allocations that end at the same time are
released together, so that the job takes ready nodes before degraded ones among all that are
free by then. Under a policy that assumes nothing (`EasyBackfill(assumed_runtime_s=None)`)
only jobs with an estimate or a time limit are released: when they do not free enough, no
reservation is made, since holding devices for an unknown time would leave them idle. A later
job may use held devices only if its own estimate (else its time limit) says it ends before
the reserved start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from suan.jobs.model import Job
from suan.sched.gang import GangFit, GangMiss, place_gang
from suan.sched.ledger import Ledger
from suan.sched.placement import PlaceContext

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState

FULL_TRIES = 24
"""Placement attempts made release by release before the search gallops (doubling steps)."""


@dataclass
class Reservation:
    """Devices held for `job` from now until `start_time`."""

    job: str
    start_time: float
    held: list[tuple[int, tuple[int, ...], int]]
    nodes: list[str]

    def admits_short(self, job: Job, now: float) -> bool:
        """True when `job`'s estimate (else its time limit) says it ends before the reserved
        start."""
        estimate = job.run_bound_s
        return estimate is not None and now + estimate <= self.start_time

    def blocking_reason(self) -> str:
        return (
            f"backfill: free devices are reserved for job {self.job} (reserved start "
            f"t={self.start_time:g}); this job has no runtime estimate short enough to run first"
        )

    def own_reason(self, miss: str) -> str:
        return (
            f"{miss}; reserved to start at t={self.start_time:g} on "
            f"{len(self.nodes)} node(s) ({', '.join(self.nodes[:4])}"
            f"{' ...' if len(self.nodes) > 4 else ''})"
        )

    def with_hold_lifted(
        self, ledger: Ledger, attempt: Callable[[], GangFit | GangMiss]
    ) -> GangFit | GangMiss:
        """Run `attempt` with the held devices free; keep holding whatever it left free."""
        mark = ledger.savepoint()
        for position, devices, milli in self.held:
            ledger.give(position, devices, milli, 0, 0)
        outcome = attempt()
        if isinstance(outcome, GangMiss):
            ledger.rollback(mark)
            return outcome
        still: list[tuple[int, tuple[int, ...], int]] = []
        for position, devices, milli in self.held:
            free = ledger.free[position]
            keep = tuple(d for d in devices if free[d] >= milli)
            if keep:
                ledger.take(position, keep, milli, 0, 0)
                still.append((position, keep, milli))
        self.held = still
        return outcome

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "start_time": self.start_time, "nodes": self.nodes}


def _should_try(step: int) -> bool:
    if step < FULL_TRIES:
        return True
    beyond = step - FULL_TRIES + 1
    return beyond & (beyond - 1) == 0


def make_reservation(cycle: CycleState, job: Job, ctx: PlaceContext, assumed: float | None
                     ) -> Reservation | None:
    """Reserve for `job` at the earliest time running work frees enough devices, or None
    (`assumed`: the runtime of a running job with no estimate; None: it never ends)."""
    ledger, now = cycle.ledger, cycle.now
    ends = []
    for alloc in cycle.live.values():
        estimate = alloc.job.run_bound_s
        runtime = estimate if estimate is not None else assumed
        if runtime is not None:
            ends.append((max(now, alloc.start_time + runtime), alloc.job.name, alloc))
    ends.sort(key=lambda item: (item[0], item[1]))
    mark = ledger.savepoint()
    found: GangFit | None = None
    start_time = now
    for step, (end, _, alloc) in enumerate(ends):
        ledger.release_allocation(alloc)
        if step < len(ends) - 1 and (not _should_try(step) or (
                ledger.any_degraded and ends[step + 1][0] == end)):
            continue
        outcome = place_gang(job, ledger, None, cycle.policy.placer, ctx)
        if isinstance(outcome, GangFit):
            found, start_time = outcome, end
            break
    ledger.rollback(mark)
    if found is None:
        return None
    return _hold(ledger, job, found, start_time)


def _hold(ledger: Ledger, job: Job, fit: GangFit, start_time: float) -> Reservation:
    held: list[tuple[int, tuple[int, ...], int]] = []
    for replica in fit.replicas:
        position = ledger.index[replica.node]
        free = ledger.free[position]
        milli = replica.milli
        devices = tuple(d for d in replica.devices if free[d] >= milli)
        if devices:
            ledger.take(position, devices, milli, 0, 0)
            held.append((position, devices, milli))
    nodes = list(dict.fromkeys(r.node for r in fit.replicas))
    return Reservation(job.name, start_time, held, nodes)

