"""Placement strategies: where the replicas of one replica group go, on one accelerator type.

Every strategy books its choice on the `Ledger` as it goes; the caller (the gang step) wraps a
whole job in a savepoint and rolls back when any group fails. A strategy returns a `GroupFit`
(the slots and a sentence saying why) or a string saying why nothing fits.

- `random`: a uniformly random feasible node per replica (seeded; for comparisons).
- `bestfit`: the feasible node with the fewest free devices, per replica.
- `spread`: the node with the most free devices, one replica per node while possible.
- `compact`: topology-compact. The whole group on one node if it can; otherwise in the
  smallest topology group (supernode, rack, block, zone) that can hold it, choosing the group
  that fits most tightly, filling its nodes in topology order so that neighbouring ranks share
  the fastest links. Fractional requests go through the fragmentation-aware scorer.
- `fgd`: fragmentation gradient descent (Weng et al., ATC'23): the node whose expected
  fragmentation, measured against the shapes of the work waiting, grows least.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Protocol

from suan.catalog.model import AllocationRule
from suan.jobs.model import Job
from suan.sched.fit import WHOLE, pick_share, pick_whole
from suan.sched.fragmentation import TaskShape, fragmentation_delta, workload_shapes
from suan.sched.ledger import Group, Ledger

LADDER: tuple[str, ...] = ("supernode", "rack", "block", "zone")
GROUPS_TRIED = 6
"""Candidate topology groups tried per tier before widening the scope."""


@dataclass(slots=True)
class ReplicaAsk:
    """What one replica group needs, resolved to one accelerator type."""

    accelerator: str
    replicas: int
    devices: int
    milli: int
    cpu: int
    mem: int
    rule: AllocationRule | None
    replica_in_domain: bool = False
    within: str | None = None
    spread: bool = False
    scope: tuple[int, ...] | None = None
    parts: int = 1
    """Per-node parts of each replica: above 1, a replica spans nodes of one supernode
    (`suan.sched.span`)."""

    @property
    def total(self) -> int:
        return self.replicas * self.devices


@dataclass
class GroupFit:
    """The slots chosen for one group — (node position, device ids) per replica — and why."""

    slots: list[tuple[int, tuple[int, ...]]]
    why: str


@dataclass
class PlaceContext:
    """Per-cycle inputs a strategy may use: an RNG seeded with `seed` (made on first use) and
    the pending work, whose common shapes (computed on first use) are the workload
    fragmentation is measured against."""

    seed: str | int = 0
    pending: Sequence[Job] = ()
    _workload: list[TaskShape] | None = None
    _rng: random.Random | None = None

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(self.seed)
        return self._rng

    @property
    def workload(self) -> list[TaskShape]:
        if self._workload is None:
            self._workload = workload_shapes(
                [(g.accelerators, g.accelerator_milli, g.cpu_milli)
                 for job in self.pending for g in job.groups]
            )
        return self._workload


class Placer(Protocol):
    name: str

    def place(self, ledger: Ledger, ask: ReplicaAsk, ctx: PlaceContext) -> GroupFit | str: ...


# ---------------------------------------------------------------------- node-level helpers
def put_replica(ledger: Ledger, position: int, ask: ReplicaAsk) -> tuple[int, ...] | None:
    """Book one replica on a node if it fits there (CPU, memory, devices); return its devices.
    A degraded node takes nothing while the ledger is `ready_only`."""
    if ledger.cpu[position] < ask.cpu or ledger.mem[position] < ask.mem:
        return None
    if ledger.ready_only and ledger.offset[position]:
        return None
    free = ledger.free[position]
    if ask.milli < WHOLE:
        devices = pick_share(free, ask.milli)
    else:
        domains = ledger.nodes[position].domains
        devices = pick_whole(free, domains, ask.devices, ask.rule, ask.replica_in_domain)
    if devices is None:
        return None
    ledger.take(position, devices, ask.milli, ask.cpu, ask.mem)
    return devices


def fill(
    ledger: Ledger, ask: ReplicaAsk, positions: list[int], per_node: int | None = None
) -> list[tuple[int, tuple[int, ...]]] | None:
    """Put the group's replicas on `positions` in order, up to `per_node` each; all or None."""
    mark = ledger.savepoint()
    slots: list[tuple[int, tuple[int, ...]]] = []
    whole, need = ledger.whole, ask.devices if ask.milli == WHOLE else 0
    for position in positions:
        placed_here = 0
        while len(slots) < ask.replicas and (per_node is None or placed_here < per_node):
            if whole[position] < need:
                break
            devices = put_replica(ledger, position, ask)
            if devices is None:
                break
            slots.append((position, devices))
            placed_here += 1
        if len(slots) == ask.replicas:
            return slots
    ledger.rollback(mark)
    return None


def rule_refusal(ledger: Ledger, ask: ReplicaAsk) -> str | None:
    """Why the vendor's allocation rule of the ask's type refuses `ask.devices` whole devices per
    replica, or None when it allows them (a share of one device is always allowed). Whether a
    replica is larger than the type's nodes is `shortage`'s to say."""
    rule = ask.rule
    if rule is None or ask.milli < WHOLE or ask.parts > 1 or rule.allows(ask.devices,
                                                                          ask.devices):
        return None  # each part of a spanning replica is a count the rule allows
    accel = ledger.catalog.find(ask.accelerator)
    size = accel.devices_per_node if accel is not None else ask.devices
    return (
        f"{ask.devices} {ask.accelerator} devices per replica is not an allowed allocation "
        f"(allowed: {rule.describe(size)})"
    )


def shortage(ledger: Ledger, ask: ReplicaAsk) -> str | None:
    """A reason when the type cannot hold the group at all (no such node, a count its
    allocation rule refuses, too few free devices), checked in O(1)."""
    if ask.accelerator not in ledger.buckets:
        return f"no schedulable node has {ask.accelerator}"
    refused = rule_refusal(ledger, ask)
    if refused:
        return refused
    largest = ledger.type_max_node[ask.accelerator]
    if ask.devices > largest:
        return f"a replica needs {ask.devices} {ask.accelerator} but nodes have at most {largest}"
    free = ledger.type_whole[ask.accelerator]
    if ledger.ready_only:
        free -= ledger.degraded_whole.get(ask.accelerator, 0)
    if ask.milli == WHOLE and free < ask.total:
        where = " on ready nodes" if ledger.ready_only else ""
        return (f"needs {ask.total} {ask.accelerator} ({ask.replicas}x{ask.devices}), "
                f"{free} free{where}")
    return None


def _topology_key(ledger: Ledger, position: int) -> tuple[str, str, str, str, int]:
    node = ledger.nodes[position]
    return (node.zone, node.block, node.rack, node.supernode, position)


def _order_slots(ledger: Ledger, slots: list[tuple[int, tuple[int, ...]]]) -> None:
    """Rank order: neighbours on the topology tree get consecutive ranks."""
    slots.sort(key=lambda slot: (_topology_key(ledger, slot[0]), slot[1]))


# ---------------------------------------------------------------------- strategies
class BestFit:
    """Each replica on the feasible node with the fewest free devices."""

    name = "bestfit"
    largest_first = False

    def place(self, ledger: Ledger, ask: ReplicaAsk, ctx: PlaceContext) -> GroupFit | str:
        reason = shortage(ledger, ask)
        if reason:
            return reason
        slots = []
        mark = ledger.savepoint()
        for _ in range(ask.replicas):
            chosen = self._one(ledger, ask, {s[0] for s in slots}, ctx)
            if chosen is None:
                ledger.rollback(mark)
                return f"no node can take replica {len(slots) + 1} of {ask.replicas}"
            slots.append(chosen)
        _order_slots(ledger, slots)
        return GroupFit(slots, self._why(ledger, slots))

    def _candidates(self, ledger: Ledger, ask: ReplicaAsk) -> list[int] | object:
        if ask.scope is not None:
            return _scoped_candidates(ledger, ask, self.largest_first)
        if ask.milli < WHOLE:
            return ledger.nodes_with_share(ask.accelerator, ask.milli)
        return ledger.nodes_with(ask.accelerator, ask.devices, largest_first=self.largest_first)

    def _one(
        self, ledger: Ledger, ask: ReplicaAsk, used: set[int], ctx: PlaceContext
    ) -> tuple[int, tuple[int, ...]] | None:
        for position in self._candidates(ledger, ask):  # type: ignore[attr-defined]
            devices = put_replica(ledger, position, ask)
            if devices is not None:
                return position, devices
        return None

    def _why(self, ledger: Ledger, slots: list[tuple[int, tuple[int, ...]]]) -> str:
        return f"best fit: nodes left with the fewest free devices ({_nodes_text(ledger, slots)})"


class Spread(BestFit):
    """Each replica on the node with the most free devices, distinct nodes first; a ready node
    that already holds a replica of the group comes before a degraded one."""

    name = "spread"
    largest_first = True

    def _one(
        self, ledger: Ledger, ask: ReplicaAsk, used: set[int], ctx: PlaceContext
    ) -> tuple[int, tuple[int, ...]] | None:
        fallback = None
        offset = ledger.offset
        for position in self._candidates(ledger, ask):  # type: ignore[attr-defined]
            if fallback is not None and offset[position] and not offset[fallback]:
                break  # a ready node that already holds a replica before a degraded one
            if position in used:
                fallback = fallback if fallback is not None else position
                continue
            devices = put_replica(ledger, position, ask)
            if devices is not None:
                return position, devices
        if fallback is not None:
            devices = put_replica(ledger, fallback, ask)
            if devices is not None:
                return fallback, devices
        return None

    def _why(self, ledger: Ledger, slots: list[tuple[int, tuple[int, ...]]]) -> str:
        return f"spread: replicas on the emptiest nodes ({_nodes_text(ledger, slots)})"


class RandomFit(BestFit):
    """Each replica on a uniformly random feasible node (seeded by the cycle)."""

    name = "random"

    def _one(
        self, ledger: Ledger, ask: ReplicaAsk, used: set[int], ctx: PlaceContext
    ) -> tuple[int, tuple[int, ...]] | None:
        candidates = list(self._candidates(ledger, ask))  # type: ignore[call-overload]
        ctx.rng.shuffle(candidates)
        for position in candidates:
            devices = put_replica(ledger, position, ask)
            if devices is not None:
                return position, devices
        return None

    def _why(self, ledger: Ledger, slots: list[tuple[int, tuple[int, ...]]]) -> str:
        return f"random feasible nodes ({_nodes_text(ledger, slots)})"


class Fragmentation(BestFit):
    """FGD: per replica, the node whose fragmentation against the waiting work grows least."""

    name = "fgd"

    def _one(
        self, ledger: Ledger, ask: ReplicaAsk, used: set[int], ctx: PlaceContext
    ) -> tuple[int, tuple[int, ...]] | None:
        workload = ctx.workload or [TaskShape(ask.devices, ask.milli, ask.cpu, 1.0)]
        best: tuple[float, int] | None = None
        for position in self._candidates(ledger, ask):  # type: ignore[attr-defined]
            delta = fragmentation_delta(ledger, position, ask, workload)
            if delta is not None and (best is None or delta < best[0]):
                best = (delta, position)
        if best is None:
            return None
        devices = put_replica(ledger, best[1], ask)
        return None if devices is None else (best[1], devices)

    def _why(self, ledger: Ledger, slots: list[tuple[int, tuple[int, ...]]]) -> str:
        return (
            "fragmentation-aware: least growth of unusable capacity for the waiting work "
            f"({_nodes_text(ledger, slots)})"
        )


class Compact:
    """Topology-compact gang placement (see the module docstring)."""

    name = "compact"

    def __init__(self) -> None:
        self._fractional = Fragmentation()

    handles_scope = True

    def place(self, ledger: Ledger, ask: ReplicaAsk, ctx: PlaceContext) -> GroupFit | str:
        reason = shortage(ledger, ask)
        if reason:
            return reason
        if ask.milli < WHOLE:
            return place_scoped(self._fractional, ledger, ask, ctx)
        if ask.spread:
            return place_scoped(Spread(), ledger, ask, ctx)
        if ask.scope is not None:
            return self._in_scope(ledger, ask)
        fit = self._one_node(ledger, ask)
        if fit is not None:
            return fit
        return self._in_groups(ledger, ask)

    def _one_node(self, ledger: Ledger, ask: ReplicaAsk) -> GroupFit | None:
        """The whole group on the best-fitting node that holds it, a node inside some group of
        the `within` tier when the job names one."""
        if ask.total > ledger.type_max_node[ask.accelerator]:
            return None
        nodes = ledger.nodes
        for position in ledger.nodes_with(ask.accelerator, ask.total, largest_first=False):
            if ask.within and not nodes[position].tier(ask.within):
                continue
            slots = fill(ledger, ask, [position])
            if slots is not None:
                node = ledger.nodes[position].name
                why = f"compact: all {ask.replicas} replica(s) on {node} (best fit)"
                return GroupFit(slots, why)
        return None

    def _ladder(self, within: str | None) -> list[str]:
        if within is None:
            return [*LADDER, "cluster"]
        if within == "supernode":
            return ["supernode"]
        tiers = [t for t in LADDER if t != "supernode"] if within == "rack" else list(LADDER)
        return tiers[: tiers.index(within) + 1]

    def _in_groups(self, ledger: Ledger, ask: ReplicaAsk) -> GroupFit | str:
        best_seen: tuple[int, str] = (0, "")
        for tier in self._ladder(ask.within):
            if tier == "cluster":
                return self._cluster_wide(ledger, ask)
            for group in self._tightest(ledger, tier, ask):
                mark = ledger.savepoint()
                slots = fill(ledger, ask, self._members_order(ledger, group.members, ask, tier))
                if slots is not None and ask.within and tier != ask.within \
                        and not _inside(ledger, slots, ask.within):
                    ledger.rollback(mark)  # a narrower group that crosses the `within` tier
                    continue
                if slots is not None:
                    _order_slots(ledger, slots)
                    nodes = len({s[0] for s in slots})
                    why = (
                        f"compact: {ask.replicas} replica(s) on {nodes} node(s) inside "
                        f"{tier} {group.label}, the tightest {tier} that holds the gang"
                    )
                    return GroupFit(slots, why)
            best_seen = max(best_seen, self._most_free(ledger, tier, ask))
        most = f" (most free: {best_seen[1]} with {best_seen[0]})" if best_seen[1] else ""
        scope = ask.within or "topology group"
        return f"no {scope} has {ask.total} free {ask.accelerator} in a usable shape{most}"

    def _tightest(self, ledger: Ledger, tier: str, ask: ReplicaAsk) -> list[Group]:
        """Up to GROUPS_TRIED groups of a tier that can hold the gang, tightest first.

        Groups are visited by free devices, fewest first; the first that hold the gang by
        their free-count histogram are ranked by how many replicas they could hold.
        """
        if ledger.tier_max_size.get((tier, ask.accelerator), 0) < ask.total:
            return []
        groups = ledger.tier_group_list[(tier, ask.accelerator)]
        need, per, replicas = ask.total, ask.devices, ask.replicas
        ready = ledger.ready_only
        # Group.room inlined: this runs over every group of the tier for each gang.
        roomy = [g for g in groups if g.whole - g.sick >= need] if ready else [
            g for g in groups if g.whole >= need]
        roomy.sort(key=_WHOLE)
        holding: list[tuple[int, str, Group]] = []
        for group in roomy:
            capacity = group.capacity(per, ready)
            if capacity >= replicas:
                holding.append((capacity, group.label, group))
                if len(holding) == GROUPS_TRIED:
                    break
        holding.sort(key=lambda item: item[:2])
        return [group for _, _, group in holding]

    def _most_free(self, ledger: Ledger, tier: str, ask: ReplicaAsk) -> tuple[int, str]:
        gids = ledger.tier_groups.get((tier, ask.accelerator), ())
        if not gids:
            return (0, "")
        group = max((ledger.groups[gid] for gid in gids), key=_WHOLE)
        return (group.whole, f"{tier} {group.label}")

    def _members_order(
        self, ledger: Ledger, members: list[int], ask: ReplicaAsk, tier: str = "cluster"
    ) -> list[int]:
        """Fill order inside a scope that spans several sub-groups: sub-groups (block, rack,
        supernode — those narrower than `tier`) that can hold the most replicas first, so the
        gang spans as few of them as possible; inside them, nodes that hold the most replicas,
        then topology order."""
        whole, groups, offset = ledger.whole, ledger.groups, ledger.offset
        per = ask.devices
        narrower = set(LADDER[: LADDER.index(tier)] if tier in LADDER else LADDER)
        room: dict[int, int] = {}

        tiers = [t for t in reversed(LADDER) if t in narrower]  # widest first

        def key(position: int) -> tuple[object, ...]:
            # One (-room, label) pair per narrower tier, (0, "") where the node has no label
            # there, so that keys of labelled and unlabelled nodes stay comparable.
            gids = ledger.node_groups[position]
            if len(gids) < len(LADDER):
                mine = {groups[gid].tier: gid for gid in gids}
                gids = tuple(mine.get(name, -1) for name in reversed(tiers))
            parts: list[object] = []
            for gid in reversed(gids):
                if gid < 0:
                    parts += [0, ""]
                elif groups[gid].tier in narrower:
                    if gid not in room:
                        room[gid] = groups[gid].capacity(per, ledger.ready_only)
                    parts += [-room[gid], groups[gid].label]
            return (*parts, offset[position], -(whole[position] // per),
                    _topology_key(ledger, position))

        usable = [p for p in members if whole[p] >= per]
        if (tier in ("rack", "supernode") and 2 * per > ledger.type_max_node[ask.accelerator]
                and not any(offset[p] for p in usable)):
            return usable  # one replica per node, no sub-groups, all ready: member order
        usable.sort(key=key)
        return usable

    def _in_scope(self, ledger: Ledger, ask: ReplicaAsk) -> GroupFit | str:
        """The group inside `ask.scope` (the nodes of one group of the `within` tier): on the
        best-fitting node that holds it whole, else filled sub-group by sub-group."""
        whole, offset = ledger.whole, ledger.offset
        members = list(ask.scope or ())
        label = f"{ask.within} {ledger.nodes[members[0]].tier(ask.within)}" if (
            members and ask.within) else "its scope"
        single = sorted((p for p in members if whole[p] >= ask.total),
                        key=lambda p: (offset[p], whole[p], p))
        for position in single:
            slots = fill(ledger, ask, [position])
            if slots is not None:
                node = ledger.nodes[position].name
                return GroupFit(slots, f"compact: all {ask.replicas} replica(s) on {node} "
                                       f"(best fit inside {label})")
        order = self._members_order(ledger, members, ask, ask.within or "cluster")
        slots = fill(ledger, ask, order)
        if slots is None:
            return f"no room for {ask.replicas}x{ask.devices} {ask.accelerator} inside {label}"
        _order_slots(ledger, slots)
        nodes = len({s[0] for s in slots})
        return GroupFit(slots, f"compact: {ask.replicas} replica(s) on {nodes} node(s) "
                               f"inside {label}")

    def _cluster_wide(self, ledger: Ledger, ask: ReplicaAsk) -> GroupFit | str:
        positions = list(ledger.nodes_with(ask.accelerator, ask.devices, largest_first=True))
        positions = self._members_order(ledger, positions, ask)
        slots = fill(ledger, ask, positions)
        if slots is None:
            return (f"{ledger.type_whole[ask.accelerator]} {ask.accelerator} are free but not "
                    f"in a shape the gang ({ask.replicas}x{ask.devices}) can use")
        _order_slots(ledger, slots)
        nodes = len({s[0] for s in slots})
        why = f"compact: {ask.replicas} replica(s) over {nodes} node(s) cluster-wide"
        return GroupFit(slots, why)


def _inside(ledger: Ledger, slots: list[tuple[int, tuple[int, ...]]], tier: str) -> bool:
    """True when every slot's node carries one and the same non-empty label at `tier`."""
    labels = {ledger.nodes[position].tier(tier) for position, _ in slots}
    return len(labels) == 1 and "" not in labels


def _scoped_candidates(ledger: Ledger, ask: ReplicaAsk, largest_first: bool) -> list[int]:
    """The scope's nodes that could take a replica, fewest free first (or most)."""
    whole, free = ledger.whole, ledger.free
    members = ask.scope or ()
    if ask.milli < WHOLE:
        usable = [p for p in members if max(free[p], default=0) >= ask.milli]
    else:
        usable = [p for p in members if whole[p] >= ask.devices]
    offset = ledger.offset
    usable.sort(key=lambda p: (offset[p], -whole[p] if largest_first else whole[p], p))
    return usable


def place_scoped(placer: Placer, ledger: Ledger, ask: ReplicaAsk, ctx: PlaceContext
                 ) -> GroupFit | str:
    """Run any strategy under the job's `within` constraint: inside one group of that tier,
    trying groups with the fewest free devices that can still hold the gang first."""
    if ask.within is None or ask.scope is not None or getattr(placer, "handles_scope", False):
        return placer.place(ledger, ask, ctx)
    gids = ledger.tier_groups.get((ask.within, ask.accelerator), ())
    groups = sorted((ledger.groups[g] for g in gids), key=lambda g: (g.whole, g.label))
    need = ask.total if ask.milli == WHOLE else 0
    for group in groups:
        if group.room(ledger.ready_only) < need:
            continue
        fit = placer.place(ledger, replace(ask, scope=tuple(group.members)), ctx)
        if isinstance(fit, GroupFit):
            fit.why += f", inside {ask.within} {group.label}"
            return fit
    return f"no {ask.within} can hold {ask.replicas}x{ask.devices} {ask.accelerator}"


_WHOLE = attrgetter("whole")


def _nodes_text(ledger: Ledger, slots: list[tuple[int, tuple[int, ...]]]) -> str:
    names = list(dict.fromkeys(ledger.nodes[p].name for p, _ in slots))
    shown = ", ".join(names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


PLACERS: dict[str, type] = {
    cls.name: cls for cls in (RandomFit, BestFit, Spread, Compact, Fragmentation)
}

from suan.sched.packers import PACKERS  # noqa: E402  (its placers build on this module)

PLACERS.update(PACKERS)
