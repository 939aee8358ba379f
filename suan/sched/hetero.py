"""Heterogeneity-aware rebalancing: running jobs move to the accelerator types that suit them.

Runs at the end of a cycle of a policy with `migrate` on, after the pending jobs were placed
(waiting jobs get free devices first; each went to its fastest type with room). Jobs take
part when they carry their own per-type speeds (`Job.type_speeds`), are preemptible, and did
not just start on devices freed by preempting others. Each has a *band*: its priority, then
its LAS level (`suan.sched.order.LAS_THRESHOLDS_S`) by the device-seconds it has attained,
counting the current run; a smaller band is more urgent. Two steps:

1. Moves: a job that a type with room runs at least `MIN_GAIN` times faster goes there, the
   most urgent band first, then the largest gain. Its own devices are released first, so a
   chain (P100 -> V100 frees a P100 for a job on a K80) completes in one cycle.
2. Swaps (`suan.sched.typeswap`): a job that a busy type runs `MIN_GAIN` times faster takes
   the place there of a job of a less urgent band, or of the same band when the exchange
   raises the product of the two jobs' speeds by `EXCHANGE_GAIN` (comparative advantage).

Each step strictly improves the speeds of the most urgent band it touches, so no sequence of
steps returns to where it started. A job that changes place is stopped and restarted: a
`Preemption` of the job for itself (the reason names both types and speeds) and a `Start` on
the new place with the job in `after_preempting`; a job started in this cycle just has its
`Start` changed, and a job that ends the cycle where it began is left alone. What a restarted
job keeps of its work is its checkpoint's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sched.decisions import Preemption, Start
from suan.sched.gang import GangFit, by_job_speed, place_gang
from suan.sched.ledger import Ledger
from suan.sched.order import LAS_THRESHOLDS_S
from suan.sched.placement import PlaceContext
from suan.sched.usage import allocation_usage

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState

MIN_GAIN = 1.2
"""Smallest speed-up (new speed over current speed) worth a stop-and-restart."""
EXCHANGE_GAIN = 1.2
"""Smallest rise of the product of two same-band jobs' speeds worth swapping their types."""

Band = tuple[float, int]


@dataclass(frozen=True)
class Placed:
    """A job taking part in rebalancing: where it runs, on which type at what speed."""

    alloc: Allocation
    current: str
    speed: float
    band: Band

    @property
    def job(self) -> Job:
        return self.alloc.job


def rebalance(cycle: CycleState, ctx: PlaceContext) -> None:
    """Moves, then swaps, then drop round trips (see the module docstring)."""
    from suan.sched.typeswap import swap_types

    before = dict(cycle.live)
    pool = movable(cycle)
    if not pool:
        return
    if move_to_faster_types(cycle, pool, ctx):
        pool = movable(cycle)
    swap_types(cycle, pool, ctx)
    drop_round_trips(cycle, before)


def band_of(alloc: Allocation, now: float) -> Band:
    """(-priority, LAS level of the device-seconds attained so far): smaller is more urgent."""
    attained = alloc.attained_at(now)
    return (-alloc.job.priority, sum(1 for limit in LAS_THRESHOLDS_S if attained >= limit))


def movable(cycle: CycleState) -> list[Placed]:
    """The live jobs that may change place in this cycle."""
    helped = {start.job.name for start in cycle.decisions.starts
              if any(name != start.job.name for name in start.after_preempting)}
    found = []
    for name, alloc in cycle.live.items():
        job = alloc.job
        if not job.type_speeds or not job.preemptible or name in helped:
            continue
        current = current_type(alloc, cycle.ledger)
        speed = job.speed_on(current)
        if current is not None and speed is not None:
            found.append(Placed(alloc, current, speed, band_of(alloc, cycle.now)))
    return found


def current_type(alloc: Allocation, ledger: Ledger) -> str | None:
    """The accelerator type a job's devices are on (its first device replica's node)."""
    for replica in alloc.replicas:
        position = ledger.index.get(replica.node)
        if position is not None and alloc.job.groups[replica.group].accelerators:
            return ledger.nodes[position].accelerator
    return None


def faster_types(job: Job, speed: float, ledger: Ledger) -> list[str]:
    """Types the job accepts that run it at least `MIN_GAIN` times faster than `speed`,
    fastest first."""
    found = []
    for name in by_job_speed(job, ledger.types_by_speed):
        other = job.speed_on(name)
        if other is None or other < speed * MIN_GAIN:
            break
        if job.accepts(name):
            found.append(name)
    return found


def whole_devices(job: Job) -> int:
    return sum(g.replicas * g.accelerators for g in job.groups)


# ---------------------------------------------------------------------- moves
def move_to_faster_types(cycle: CycleState, pool: list[Placed], ctx: PlaceContext) -> int:
    """Move jobs of `pool` to faster types that have room: most urgent band, then largest
    gain first. Returns how many moved."""
    ledger = cycle.ledger
    moves = []
    for placed in pool:
        if placed.job.name in cycle.started_now:
            continue
        targets = [name for name in faster_types(placed.job, placed.speed, ledger)
                   if ledger.type_whole.get(name, 0) >= whole_devices(placed.job)]
        if targets:
            gain = (placed.job.speed_on(targets[0]) or 0.0) / placed.speed
            moves.append((placed.band, -gain, placed.job.name, placed, tuple(targets)))
    moves.sort(key=lambda item: item[:3])
    return sum(try_move(cycle, placed, targets, ctx) for *_, placed, targets in moves)


def try_move(cycle: CycleState, placed: Placed, targets: tuple[str, ...], ctx: PlaceContext
             ) -> bool:
    """Place the job on `targets` with its own devices released; record the move, or put
    everything back and return False."""
    mark = cycle.ledger.savepoint()
    usage = release(cycle, placed.alloc)
    fit = place_on(cycle, placed.job, targets, ctx)
    if fit is None:
        cycle.ledger.rollback(mark)
        book(cycle, placed.job, [usage])
        return False
    cycle.ledger.grew()
    target = chosen_type(fit, targets)
    gain = (placed.job.speed_on(target) or 0.0) / placed.speed
    reason = (f"moves to a faster type with room: {target} runs it {gain:.2f}x faster than "
              f"{placed.current}, by the job's measured speeds")
    relocate(cycle, placed.alloc, fit, reason,
             f"moved from {placed.current} to {target} ({gain:.2f}x faster)")
    return True


# ---------------------------------------------------------------------- shared steps
def release(cycle: CycleState, alloc: Allocation) -> dict[str, float]:
    """Free a live job's devices on the ledger and its quota; return the quota it held."""
    usage = allocation_usage(alloc, cycle.ledger)
    cycle.ledger.release_allocation(alloc)
    cycle.quota.add(alloc.job.queue, usage, -1.0)
    return usage


def book(cycle: CycleState, job: Job, usages: list[dict[str, float]], sign: float = 1.0) -> None:
    """Add (or with sign -1 remove) quota usage of `job`'s queue."""
    for usage in usages:
        cycle.quota.add(job.queue, usage, sign)


def place_on(cycle: CycleState, job: Job, types: tuple[str, ...], ctx: PlaceContext
             ) -> GangFit | None:
    """Place `job` with every device group limited to `types` (in that order), on ready nodes
    only (a job is never moved onto a degraded node), or None."""
    groups = tuple(replace(g, accelerator_types=types) if g.accelerators else g
                   for g in job.groups)
    quota = cycle.quota if cycle.policy.quotas else None
    fit = place_gang(replace(job, groups=groups), cycle.ledger, quota, cycle.policy.placer, ctx,
                     degraded=False)
    return fit if isinstance(fit, GangFit) else None


def chosen_type(fit: GangFit, fallback: tuple[str, ...]) -> str:
    return next((a for a in fit.accelerators if a), fallback[0])


def relocate(cycle: CycleState, alloc: Allocation, fit: GangFit, reason: str, why: str) -> None:
    """Record a job's new place: change its Start when it started in this cycle, else report
    a stop (`reason`) and a restart (`why`)."""
    job = alloc.job
    book(cycle, job, fit.usage)
    cycle.live[job.name] = Allocation(job, fit.replicas, start_time=cycle.now)
    starts = cycle.decisions.starts
    if job.name in cycle.started_now:
        index = next(i for i, s in enumerate(starts) if s.job.name == job.name)
        starts[index] = replace(starts[index], replicas=fit.replicas,
                                accelerators=fit.accelerators, why=f"{why}; {fit.why}")
        return
    cycle.started_now.add(job.name)
    cycle.decisions.preemptions.append(Preemption(job.name, reason, job.name))
    starts.append(Start(job, fit.replicas, f"{why}; {fit.why}", fit.accelerators, (job.name,)))


def drop_round_trips(cycle: CycleState, before: dict[str, Allocation]) -> None:
    """Forget the stop and restart of a job that ends the cycle where it began."""
    decisions = cycle.decisions
    back = {p.job for p in decisions.preemptions if p.for_job == p.job
            and p.job in before and cycle.live[p.job].replicas == before[p.job].replicas}
    if not back:
        return
    decisions.preemptions = [p for p in decisions.preemptions if p.job not in back]
    decisions.starts = [s for s in decisions.starts if s.job.name not in back]
    for name in back:
        cycle.live[name] = before[name]
        cycle.started_now.discard(name)
