"""Type swaps: step 2 of heterogeneity-aware rebalancing (`suan.sched.hetero`).

Jobs are taken most urgent band first (ties: the policy's order). For a job B on type S and
each type F that runs B at least `MIN_GAIN` times faster (fastest first), a partner A on F
qualifies when A's band is less urgent than B's, or when it is the same band and B's gain
(speed on F over speed on S) is at least `EXCHANGE_GAIN` times A's loss (A's speed on F over
its speed on S). Partners are tried least urgent first, then smallest loss (at most
`MAX_PARTNERS` per type): both are released on the ledger, B is placed on F and A on any type
it accepts but F, fastest for A first (B's old place is free). If both fit, both changes are
recorded; otherwise everything is put back. A job swaps at most once per cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from suan.sched import hetero
from suan.sched.gang import GangFit, by_job_speed
from suan.sched.hetero import Placed, book, chosen_type, place_on, release, relocate
from suan.sched.placement import PlaceContext

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState

MAX_PARTNERS = 4
"""Jobs on one type tried as the partner of one swap."""


def swap_types(cycle: CycleState, movable: list[Placed], ctx: PlaceContext) -> None:
    """Every qualifying swap among `movable` (see the module docstring)."""
    order = cycle.policy.order.key
    pool = sorted(movable, key=lambda p: (p.band, order(p.job)))
    by_type: dict[str, list[Placed]] = {}
    for placed in pool:
        by_type.setdefault(placed.current, []).append(placed)
    done: set[str] = set()
    for placed in pool:
        if placed.job.name in done:
            continue
        partner = swap_one(cycle, placed, by_type, done, ctx)
        if partner is not None:
            done.update((placed.job.name, partner))


def swap_one(cycle: CycleState, placed: Placed, by_type: dict[str, list[Placed]], done: set[str],
             ctx: PlaceContext) -> str | None:
    """Swap `placed` onto a faster type with a qualifying partner; the partner's name."""
    for target in hetero.faster_types(placed.job, placed.speed, cycle.ledger):
        partners = [(other.band, loss, other.job.name, other)
                    for other in by_type.get(target, ()) if other.job.name not in done
                    and (loss := qualifies(placed, other, target)) is not None]
        partners.sort(key=lambda item: (tuple(-x for x in item[0]), item[1], item[2]))
        for *_, partner in partners[:MAX_PARTNERS]:
            if try_swap(cycle, placed, target, partner, ctx):
                return partner.job.name
    return None


def qualifies(placed: Placed, other: Placed, target: str) -> float | None:
    """`other`'s loss (its speed on `target` over its speed on `placed`'s type) when it may
    give up `target` to `placed`, else None."""
    there = other.job.speed_on(placed.current)
    if there is None or other.job.name == placed.job.name:
        return None
    loss = other.speed / there
    if placed.band < other.band:
        return loss
    gain = (placed.job.speed_on(target) or 0.0) / placed.speed
    if placed.band == other.band and gain >= hetero.EXCHANGE_GAIN * loss:
        return loss
    return None


def try_swap(cycle: CycleState, placed: Placed, target: str, partner: Placed, ctx: PlaceContext
             ) -> bool:
    """`placed` to `target`, `partner` anywhere but `target`; False (nothing changed) when
    either does not fit."""
    ledger = cycle.ledger
    mark = ledger.savepoint()
    held = [release(cycle, placed.alloc), release(cycle, partner.alloc)]
    elsewhere = tuple(t for t in by_job_speed(partner.job, ledger.types_by_speed)
                      if t != target and partner.job.accepts(t))
    fit = place_on(cycle, placed.job, (target,), ctx)
    other = None
    if fit is not None and elsewhere:
        book(cycle, placed.job, fit.usage)
        other = place_on(cycle, partner.job, elsewhere, ctx)
        book(cycle, placed.job, fit.usage, -1.0)
    if fit is None or other is None:
        ledger.rollback(mark)
        book(cycle, placed.job, held[:1])
        book(cycle, partner.job, held[1:])
        return False
    ledger.grew()
    record_swap(cycle, placed, target, fit, partner, other, chosen_type(other, elsewhere))
    return True


def record_swap(cycle: CycleState, placed: Placed, target: str, fit: GangFit, partner: Placed,
                other: GangFit, landed: str) -> None:
    """Report both changes of place, each naming the other job and why."""
    gained = (placed.job.speed_on(target) or 0.0) / placed.speed
    kept = (partner.job.speed_on(landed) or 0.0) / partner.speed
    name, other_name = placed.job.name, partner.job.name
    because = ("it is more urgent (priority, then LAS level)" if placed.band < partner.band
               else f"it gains more there than job {other_name} loses")
    relocate(cycle, placed.alloc, fit,
             f"swaps onto {target} with job {other_name}, {gained:.2f}x faster than on "
             f"{placed.current}: {because}",
             f"took job {other_name}'s place on {target} ({gained:.2f}x faster than on "
             f"{placed.current}: {because})")
    relocate(cycle, partner.alloc, other,
             f"gives its place on {target} to job {name} ({gained:.2f}x faster there; "
             f"{because}); restarts on {landed} at {kept:.2f}x its speed on {target}",
             f"gave its place on {target} to job {name}; on {landed} at {kept:.2f}x its "
             f"speed there")
