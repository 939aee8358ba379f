"""Gang reserve: place every replica of every group of a job, or none of them.

For each replica group, accelerator types are tried in the job's order of preference (for
"any type", fastest first, then most free); a type whose allocation rule refuses the group's
devices per replica is skipped with its reason; each other type is first admitted against the
queue's quota, then handed to the placement strategy. The whole job is one ledger savepoint: if
any group fails, everything it booked is rolled back.

Constraints hold for the whole job: with `within`, every replica of every group (CPU-only ones
included) sits under one label of that tier; with `replica_in_domain`, every replica of every
group inside one link domain. Degraded nodes are the last resort: the job is first placed on
ready nodes only, and only when that fails may it use degraded ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from suan.cluster.snapshot import ReplicaPlacement
from suan.jobs.model import Job, ReplicaGroup
from suan.sched.decisions import WaitCode
from suan.sched.ledger import Ledger
from suan.sched.placement import (
    GROUPS_TRIED,
    GroupFit,
    PlaceContext,
    Placer,
    ReplicaAsk,
    place_scoped,
    rule_refusal,
    shortage,
)
from suan.sched.quota import QuotaBook, request_vector
from suan.sched.reasons import (
    fallback_note,
    health_shortfall,
    never_fits,
    not_ready_note,
    shape_code,
)
from suan.sched.span import SupernodeSpan, span_shortage


@dataclass
class GangFit:
    """A successful placement: replicas, the type chosen per group, the quota it uses, why."""

    replicas: tuple[ReplicaPlacement, ...]
    accelerators: tuple[str | None, ...]
    usage: list[dict[str, float]]
    why: str


@dataclass
class GangMiss:
    """Why a job could not be placed, with the code of the most telling failure."""

    reason: str
    code: WaitCode
    queue_dependent: bool = False
    tried: str = ""
    """The accelerator type whose miss this is (empty for a whole job's verdict)."""


def candidate_types(
    job: Job, group: ReplicaGroup, ledger: Ledger
) -> list[str] | tuple[str, ...]:
    """Types to try for a group: its preference list, or every type fastest first. A job that
    carries its own per-type speeds (`Job.type_speeds`) is tried fastest first by them (types
    it gives no speed for after, in the listed order); else, for a group that carries the
    planner's advice (`ReplicaGroup.planned_speeds`, resolved before the cycle), the
    planner's tokens/s on each type orders them (ties keep the listed order)."""
    types = group.accelerator_types or ledger.types_by_speed
    if len(types) < 2:
        return types
    if job.type_speeds:
        return by_job_speed(job, types)
    if not group.planned_speeds:
        return types
    speeds = dict(group.planned_speeds)
    return sorted(types, key=lambda name: -speeds.get(name, 0.0))


def by_job_speed(job: Job, types: Sequence[str]) -> tuple[str, ...]:
    """`types` fastest first by the job's own speeds; types without one last, in order."""
    return _by_speed(job.type_speeds, tuple(types))


@lru_cache(maxsize=4096)
def _by_speed(speeds: tuple[tuple[str, float], ...], types: tuple[str, ...]
              ) -> tuple[str, ...]:
    known = dict(speeds)
    return tuple(sorted(types, key=lambda name: (0, -known[name]) if name in known else (1, 0)))


def make_ask(job: Job, group: ReplicaGroup, accelerator: str, ledger: Ledger, replicas: int,
             scope: tuple[int, ...] | None = None) -> ReplicaAsk:
    """What `replicas` replicas of `group` need on `accelerator`, limited to the node positions
    of `scope` when given."""
    count = group.accelerators
    parts = ledger.layout.span_parts(accelerator, count) if count > 1 and \
        group.accelerator_milli == 1000 else 1
    return ReplicaAsk(
        accelerator=accelerator,
        replicas=replicas,
        devices=count,
        milli=group.accelerator_milli,
        cpu=group.cpu_milli,
        mem=group.memory_mib,
        rule=ledger.type_rules.get(accelerator),
        replica_in_domain=job.topology.replica_in_domain,
        within=job.topology.within,
        spread=job.topology.placement == "spread",
        scope=scope,
        parts=max(1, parts),
    )


def place_gang(
    job: Job,
    ledger: Ledger,
    quota: QuotaBook | None,
    placer: Placer,
    ctx: PlaceContext,
    *,
    degraded: bool = True,
) -> GangFit | GangMiss:
    """Place the whole job on the ledger (booked) or return why not (nothing booked).

    Ready nodes first: where the cluster has degraded nodes, the job is placed on ready nodes
    only; only when that fails, and `degraded` allows it, on all nodes (each strategy still
    takes ready nodes before degraded ones), and the reason names the degraded nodes used."""
    if not ledger.any_degraded or ledger.ready_only:
        return _place_job(job, ledger, quota, placer, ctx)
    with ledger.only_ready():
        outcome = _place_job(job, ledger, quota, placer, ctx)
    if isinstance(outcome, GangFit) or not degraded or outcome.code in _SAME_ON_ALL_NODES \
            or not _degraded_may_help(job, ledger):
        return outcome
    outcome = _place_job(job, ledger, quota, placer, ctx)
    if isinstance(outcome, GangFit):
        sick = [r.node for r in outcome.replicas if ledger.offset[ledger.index[r.node]]]
        if sick:
            names = ", ".join(dict.fromkeys(sick))
            outcome.why += f"; uses degraded node(s) {names}: the ready nodes cannot hold it"
    return outcome


SPAN = SupernodeSpan()
"""The placement of replicas that span nodes, whatever the policy's strategy."""

_SAME_ON_ALL_NODES = frozenset({WaitCode.QUOTA, WaitCode.UNSCHEDULABLE})
"""Misses that do not depend on which nodes may take work (quota, node sizes, rules)."""


def _degraded_may_help(job: Job, ledger: Ledger) -> bool:
    """False when no degraded node can take any replica of the job: every group wants whole
    devices and no type it accepts has as many whole free devices on degraded nodes."""
    for group in job.groups:
        if not group.accelerators or group.accelerator_milli < 1000:
            return True
        room, count = ledger.degraded_whole, group.accelerators
        if any(room.get(accel, 0) >= count // max(1, ledger.layout.span_parts(accel, count))
               for accel in group.accelerator_types or ledger.types_by_speed):
            return True  # room for a replica, or for one part of a spanning replica
    return False


def _place_job(
    job: Job, ledger: Ledger, quota: QuotaBook | None, placer: Placer, ctx: PlaceContext
) -> GangFit | GangMiss:
    """Every group, under the job's `within` constraint when it has groups to hold together."""
    within = job.topology.within
    if within is None or (len(job.groups) == 1 and job.groups[0].accelerators):
        return _place_groups(job, ledger, quota, placer, ctx, None)
    return _place_within(job, ledger, quota, placer, ctx, within)


def _place_within(
    job: Job, ledger: Ledger, quota: QuotaBook | None, placer: Placer, ctx: PlaceContext,
    tier: str,
) -> GangFit | GangMiss:
    """All groups inside one label of `tier`: the labels that might hold them, tightest first
    (up to `GROUPS_TRIED`), each tried for every group in turn."""
    labels = _within_labels(job, ledger, tier)
    misses: list[GangMiss] = []
    for label in labels[:GROUPS_TRIED]:
        outcome = _place_groups(job, ledger, quota, placer, ctx, label)
        if isinstance(outcome, GangFit):
            outcome.why = f"all groups inside {tier} {label}: {outcome.why}"
            return outcome
        misses.append(outcome)
    if not misses:
        return GangMiss(f"no {tier} has the free devices for all {len(job.groups)} group(s) "
                        "of the job together", WaitCode.CONSTRAINT)
    codes = {miss.code for miss in misses}
    code = codes.pop() if len(codes) == 1 else WaitCode.CONSTRAINT
    return GangMiss(f"no {tier} holds all {len(job.groups)} group(s) of the job together "
                    f"({tier} {labels[0]}: {misses[0].reason})", code,
                    any(miss.queue_dependent for miss in misses))


def _within_labels(job: Job, ledger: Ledger, tier: str) -> list[str]:
    """Labels of `tier` whose free whole devices, on some candidate type of each device group,
    cover that group's floor; fewest free devices (over all those types) first. A job of
    CPU-only groups may use every label of a node that takes work."""
    room: dict[str, int] = {}
    counted: set[tuple[str, str]] = set()
    possible: set[str] | None = None
    for group in job.groups:
        if not group.accelerators:
            continue
        need = group.floor_replicas * group.accelerators if group.accelerator_milli == 1000 \
            else 0
        holds: set[str] = set()
        for accelerator in candidate_types(job, group, ledger):
            for found in ledger.tier_group_list.get((tier, accelerator), ()):
                if (accelerator, found.label) not in counted:
                    counted.add((accelerator, found.label))
                    room[found.label] = room.get(found.label, 0) + found.whole
                if found.room(ledger.ready_only) >= need:
                    holds.add(found.label)
        possible = holds if possible is None else possible & holds
    if possible is None:
        return sorted({node.tier(tier) for node, takes in zip(ledger.nodes, ledger.takes_work,
                                                                strict=True)
                       if takes and node.tier(tier)})
    return sorted(possible, key=lambda label: (room[label], label))


def _place_groups(
    job: Job, ledger: Ledger, quota: QuotaBook | None, placer: Placer, ctx: PlaceContext,
    pin: str | None,
) -> GangFit | GangMiss:
    """Every group in turn, each inside label `pin` of the job's `within` tier when given."""
    mark = ledger.savepoint()
    replicas: list[ReplicaPlacement] = []
    chosen: list[str | None] = []
    usages: list[dict[str, float]] = []
    whys: list[str] = []
    # Later groups must see the quota earlier groups of the same job take.
    counted = quota if quota is not None and len(job.groups) > 1 else None
    for index, group in enumerate(job.groups):
        outcome = _place_group(job, index, group, ledger, quota, placer, ctx, pin)
        if isinstance(outcome, GangMiss):
            ledger.rollback(mark)
            _uncount(counted, job.queue, usages)
            if len(job.groups) > 1 and outcome.code != WaitCode.UNSCHEDULABLE:
                return never_fits_job(job, ledger) or outcome
            return outcome
        fit, accelerator, usage = outcome
        replicas.extend(_placements(index, fit, ledger, group.accelerator_milli))
        chosen.append(accelerator)
        usages.append(usage)
        whys.append(fit.why if len(job.groups) == 1 else f"{group.name}: {fit.why}")
        if counted is not None:
            counted.add(job.queue, usage)
    _uncount(counted, job.queue, usages)
    return GangFit(tuple(replicas), tuple(chosen), usages, "; ".join(whys))


def _uncount(quota: QuotaBook | None, queue: str, usages: list[dict[str, float]]) -> None:
    if quota is not None:
        for usage in usages:
            quota.add(queue, usage, -1.0)


def _placements(
    group_index: int, fit: GroupFit, ledger: Ledger, milli: int
) -> list[ReplicaPlacement]:
    return [
        ReplicaPlacement(group_index, ledger.nodes[position].name, devices, milli)
        for position, devices in fit.slots
    ]


def _place_group(
    job: Job,
    index: int,
    group: ReplicaGroup,
    ledger: Ledger,
    quota: QuotaBook | None,
    placer: Placer,
    ctx: PlaceContext,
    pin: str | None = None,
) -> tuple[GroupFit, str | None, dict[str, float]] | GangMiss:
    """One group on the first candidate type that admits and holds it, inside label `pin` of
    the job's `within` tier when given."""
    if group.accelerators == 0:
        return _place_cpu_group(job, group, ledger, pin)
    misses: list[GangMiss] = []
    types = candidate_types(job, group, ledger)
    for accelerator in types:
        scope = None
        if pin is not None:
            scope = _pinned_scope(job, accelerator, ledger, pin)
            if scope is None:
                misses.append(GangMiss(f"no {accelerator} in {job.topology.within} {pin}",
                                       WaitCode.CONSTRAINT, tried=accelerator))
                continue
        for replicas in _replica_counts(group):
            ask = make_ask(job, group, accelerator, ledger, replicas, scope)
            refused = rule_refusal(ledger, ask)
            if refused:  # the rule refuses the count per replica, whatever the replicas
                misses.append(GangMiss(refused, WaitCode.UNSCHEDULABLE))
                break
            short = span_shortage(ledger, ask) if ask.parts > 1 else shortage(ledger, ask)
            if short:
                misses.append(_judged(ledger, ask, short, job))
                continue
            usage = request_vector(accelerator, ask.total * ask.milli / 1000)
            if quota is not None:
                refusal = quota.check(job.queue, usage)
                if refusal:
                    never = quota.never_admits(job.queue, usage)
                    code = WaitCode.UNSCHEDULABLE if never else WaitCode.QUOTA
                    misses.append(GangMiss(never or refusal, code, tried=accelerator))
                    continue
            fit = place_scoped(SPAN if ask.parts > 1 else placer, ledger, ask, ctx)
            if isinstance(fit, GroupFit):
                fit.why += (_speed_note(job, group, accelerator, ledger) if job.type_speeds
                            else _planner_note(job, group, accelerator))
                fit.why += _second_choice_note(misses, accelerator, types, group, replicas)
                return fit, accelerator, usage
            misses.append(_judged(ledger, ask, fit, job))
    return _explain(misses, job, group, ledger)


def _judged(ledger: Ledger, ask: ReplicaAsk, reason: str, job: Job) -> GangMiss:
    """A strategy's miss, judged against the registered and the ready cluster
    (`suan.sched.reasons`)."""
    never = never_fits(ledger, ask)
    if never is not None:
        return GangMiss(never, WaitCode.UNSCHEDULABLE, tried=ask.accelerator)
    unready = health_shortfall(ledger, ask)
    if unready is not None:
        return GangMiss(unready, WaitCode.HEALTH, tried=ask.accelerator)
    return GangMiss(reason + not_ready_note(ledger, ask.accelerator), _miss_code(reason, job),
                    tried=ask.accelerator)


def _second_choice_note(misses: list[GangMiss], accelerator: str,
                        types: Sequence[str], group: ReplicaGroup, replicas: int) -> str:
    """Why a group started on a later type than its first, or on its elastic floor."""
    if not misses:
        return ""
    first = misses[0]
    if first.tried != accelerator:
        choice = list(types).index(accelerator) + 1
        return fallback_note(accelerator, choice, len(types), first.tried, first.reason)
    if replicas < group.replicas:
        return (f"; at its floor of {replicas} of {group.replicas} replicas: "
                f"{first.reason}")
    return ""


def _pinned_scope(job: Job, accelerator: str, ledger: Ledger, pin: str
                  ) -> tuple[int, ...] | None:
    """Positions of the `accelerator` nodes under label `pin` of the job's `within` tier."""
    gid = ledger.group_ids.get((job.topology.within or "", accelerator, pin))
    return None if gid is None else tuple(ledger.groups[gid].members)


def _place_cpu_group(
    job: Job, group: ReplicaGroup, ledger: Ledger, pin: str | None = None
) -> tuple[GroupFit, str | None, dict[str, float]] | GangMiss:
    """Replicas that need no accelerator: on nodes with the CPU and memory (under label `pin`
    of the job's `within` tier when given), ready nodes before degraded ones (none while the
    ledger is `ready_only`), CPU-only nodes first (accelerator nodes keep their CPUs for
    accelerator work where possible), then the nodes with the most free CPU. Such replicas use
    no accelerator quota."""
    cpu, mem = group.cpu_milli, group.memory_mib
    offset, nodes = ledger.offset, ledger.nodes
    candidates = [p for p, ok in enumerate(ledger.takes_work) if ok and ledger.cpu[p] >= cpu
                  and ledger.mem[p] >= mem and not (ledger.ready_only and offset[p])]
    if pin is not None:
        tier = job.topology.within or ""
        candidates = [p for p in candidates if nodes[p].tier(tier) == pin]
    candidates.sort(key=lambda p: (offset[p], nodes[p].accelerator is not None,
                                   -ledger.cpu[p], p))
    slots: list[tuple[int, tuple[int, ...]]] = []
    mark = ledger.savepoint()
    for position in candidates:
        while len(slots) < group.replicas and ledger.cpu[position] >= cpu \
                and ledger.mem[position] >= mem:
            ledger.take(position, (), 0, cpu, mem)
            slots.append((position, ()))
        if len(slots) == group.replicas:
            nodes = len({s[0] for s in slots})
            why = f"CPU only: {group.replicas} replica(s) on {nodes} node(s) with the free CPU"
            return GroupFit(slots, why), None, {}
    ledger.rollback(mark)
    return GangMiss(
        f"group {group.name}: {group.replicas} replica(s) of {cpu / 1000:g} CPU and "
        f"{mem} MiB do not fit on the nodes that take work", WaitCode.CAPACITY)


def _speed_note(job: Job, group: ReplicaGroup, accelerator: str, ledger: Ledger) -> str:
    """Why this type, when the job's own speeds ordered the candidates."""
    types = group.accelerator_types or ledger.types_by_speed
    if len(types) < 2:
        return ""
    ranked = by_job_speed(job, types)
    listed = ", ".join(f"{name} {job.speed_on(name):.2f}" for name in ranked
                       if job.speed_on(name) is not None)
    best = job.speed_on(ranked[0]) or 1.0
    own = job.speed_on(accelerator)
    where = "its fastest type" if accelerator == ranked[0] else (
        f"the fastest with room, at {own / best:.2f}x its best" if own else
        "a type it gives no speed for")
    return f"; {accelerator} is {where} by the job's measured speeds ({listed})"


def _planner_note(job: Job, group: ReplicaGroup, accelerator: str) -> str:
    """Why this type, when the planner ordered the candidates."""
    types = group.accelerator_types
    if not group.planned_speeds or len(types) < 2:
        return ""
    speeds = dict(group.planned_speeds)
    ranked = ", ".join(f"{name} {speeds.get(name, 0.0):,.0f}" for name in
                       sorted(types, key=lambda name: -speeds.get(name, 0.0)))
    return f"; {accelerator} by the planner's tokens/s for {job.model} ({ranked})"


def _replica_counts(group: ReplicaGroup) -> list[int]:
    """Replica counts to try: the full count, then (elastic jobs) the floor."""
    floor = group.floor_replicas
    return [group.replicas] if floor >= group.replicas else [group.replicas, floor]


def _miss_code(reason: str, job: Job) -> WaitCode:
    """The code of a miss on ready nodes that could hold the group when empty."""
    if job.topology.within and reason.startswith("no "):
        return WaitCode.CONSTRAINT
    if shape_code(reason):
        return WaitCode.SHAPE
    return WaitCode.CAPACITY


MAX_OTHER_REASONS = 3
"""Other accelerator types' reasons quoted beside the main one."""


MISS_RANK = {WaitCode.CAPACITY: 0, WaitCode.SHAPE: 0, WaitCode.CONSTRAINT: 1,
             WaitCode.QUOTA: 2, WaitCode.HEALTH: 3, WaitCode.UNSCHEDULABLE: 4}
"""Which type's miss a waiting job reports: the most actionable (busy devices, then a
constraint, then quota, then nodes that are not ready; never fitting only when no type can)."""


def _explain(misses: list[GangMiss], job: Job, group: ReplicaGroup, ledger: Ledger
             ) -> GangMiss:
    if not misses:
        return _no_type(job, group, ledger)
    best = min(misses, key=lambda miss: MISS_RANK.get(miss.code, 3))
    if best.code == WaitCode.UNSCHEDULABLE and not group.accelerator_types:
        best = _unready_type(job, group, ledger) or best
    dependent = any(miss.code == WaitCode.QUOTA for miss in misses)
    reason = best.reason
    others = list(dict.fromkeys(m.reason for m in misses if m.reason != best.reason))
    if others:
        shown = "; ".join(others[:MAX_OTHER_REASONS])
        more = f" and {len(others) - MAX_OTHER_REASONS} more" if len(others) > 3 else ""
        reason = f"{best.reason} (also: {shown}{more})"
    return GangMiss(reason, best.code, dependent)


def _unready_type(job: Job, group: ReplicaGroup, ledger: Ledger) -> GangMiss | None:
    """For a group of any type that no ready type can ever hold: a registered type with no
    ready node that could, as a wait for health."""
    for accelerator in sorted(ledger.registered):
        if accelerator in ledger.buckets:
            continue
        ask = make_ask(job, group, accelerator, ledger, group.floor_replicas)
        if never_fits(ledger, ask) is None:
            return GangMiss(health_shortfall(ledger, ask) or f"no {accelerator} node is ready",
                            WaitCode.HEALTH, tried=accelerator)
    return None


def _no_type(job: Job, group: ReplicaGroup, ledger: Ledger) -> GangMiss:
    """A group of any type when no type has a ready node: waiting for health when a
    registered type could hold it, else unschedulable."""
    unready = _unready_type(job, group, ledger)
    if unready is not None:
        return unready
    if not ledger.registered:
        return GangMiss(f"group {group.name}: the cluster has no accelerator node",
                        WaitCode.UNSCHEDULABLE)
    reasons = [never_fits(ledger, make_ask(job, group, name, ledger, group.floor_replicas))
               for name in sorted(ledger.registered)]
    shown = "; ".join(r for r in reasons[:MAX_OTHER_REASONS] if r)
    return GangMiss(f"group {group.name}: no type of the cluster can hold it ({shown})",
                    WaitCode.UNSCHEDULABLE)


def never_fits_job(job: Job, ledger: Ledger) -> GangMiss | None:
    """The verdict for a job with a group that no type it accepts could ever hold, whatever
    the nodes' health (checked when another group missed first); None otherwise."""
    for group in job.groups:
        if not group.accelerators:
            continue
        types = group.accelerator_types or tuple(ledger.registered)
        reasons = []
        for accelerator in types:
            ask = make_ask(job, group, accelerator, ledger, group.floor_replicas)
            why = never_fits(ledger, ask)
            if why is None:
                break
            reasons.append(why)
        else:
            if reasons:
                return GangMiss(f"group {group.name}: {'; '.join(reasons[:MAX_OTHER_REASONS])}",
                                WaitCode.UNSCHEDULABLE)
    return None
