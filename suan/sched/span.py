"""Replicas that span nodes: per-node parts of one replica inside one supernode.

Where a type's link domain spans machines (the catalog's `supernode_devices`: a GB200 NVL72
rack, an Ascend CloudMatrix384) and nodes share a `supernode` label, a replica of more devices
than one node has is placed as `ReplicaAsk.parts` equal parts (`AcceleratorType.span_parts`),
one per node, every part of a replica on a distinct node of one supernode. Each part takes
its devices on its node as an ordinary replica of that size would (`put_replica`: the
allocation rule, modules, intra-node domains) and its share of the replica's CPU and memory.

A group's replicas are placed one after the other, each in the supernode with the fewest
free devices that can still hold it (best fit, so one job's replicas fill one supernode
before the next), on its nodes with the fewest free devices first (degraded nodes last),
then in node order. A replica's parts are listed in node order, which is the domain's order:
launched one rank set per node, they get NODE_RANK and LOCAL_RANK in that order. The job's
`within` constraint, the gang's all-or-nothing savepoint, quotas, preemption and backfill see
the parts as the replica they are: the placement is returned as one `GroupFit`, whose slots
are the parts.
"""

from __future__ import annotations

from dataclasses import replace

from suan.cluster.snapshot import part_share
from suan.sched.ledger import Group, Ledger
from suan.sched.placement import GroupFit, PlaceContext, ReplicaAsk, put_replica

TIER = "supernode"
"""The topology tier whose groups are the link domains that span nodes."""
SHOWN_REPLICAS = 4
"""Replicas whose nodes the placement's reason names before the rest are only counted."""


def per_part(ask: ReplicaAsk) -> int:
    """Devices in each part of a replica of `ask` (all of them for an ordinary replica)."""
    return ask.devices // ask.parts


def part_ask(ask: ReplicaAsk) -> ReplicaAsk:
    """One part of one replica of `ask`: its devices, and its share of CPU and memory."""
    size = per_part(ask)
    return replace(ask, replicas=1, devices=size, parts=1,
                   cpu=part_share(ask.cpu, size, ask.devices),
                   mem=part_share(ask.mem, size, ask.devices))


def shape_text(ask: ReplicaAsk) -> str:
    """'2 parts of 4 GB200-NVL72 on nodes of one supernode' for a spanning ask."""
    return f"{ask.parts} parts of {per_part(ask)} {ask.accelerator} on nodes of one supernode"


# ------------------------------------------------------------------------------------ reasons
def never_spans(ledger: Ledger, ask: ReplicaAsk) -> str | None:
    """Why the registered cluster, whatever its health, can never hold a replica of a
    spanning ask; None when it can."""
    accelerator = ask.accelerator
    largest = ledger.layout.registered_supernode.get(accelerator, 0)
    if not largest:
        return (f"a replica of {ask.devices} {accelerator} is larger than a node and must "
                f"span {shape_text(ask)}, but no {accelerator} node carries a supernode label")
    if largest < ask.devices:
        return (f"a replica needs {ask.devices} {accelerator} in one supernode "
                f"({shape_text(ask)}) but the largest {accelerator} supernode has {largest}")
    node = ledger.registered_max_node[accelerator]
    if per_part(ask) > node:
        return (f"a replica of {ask.devices} {accelerator} spans {shape_text(ask)} but "
                f"{accelerator} nodes have at most {node}")
    return None


def span_unready(ledger: Ledger, ask: ReplicaAsk) -> str | None:
    """Why the ready nodes, even with nothing running, hold no supernode large enough for a
    replica of a spanning ask; None when some supernode is."""
    largest = ledger.tier_max_size.get((TIER, ask.accelerator), 0)
    if largest < ask.devices:
        return (f"a replica needs {ask.devices} {ask.accelerator} in one supernode "
                f"({shape_text(ask)}); the ready nodes' largest supernode has {largest} "
                "healthy")
    node = ledger.type_max_node.get(ask.accelerator, 0)
    if per_part(ask) > node:
        return (f"a replica of {ask.devices} {ask.accelerator} spans {shape_text(ask)}; the "
                f"ready nodes have at most {node} healthy")
    return None


def span_shortage(ledger: Ledger, ask: ReplicaAsk) -> str | None:
    """`shortage` for a spanning ask: a reason when the type cannot hold the group at all
    now (no such node, no supernode large enough, too few free devices); O(1)."""
    accelerator = ask.accelerator
    if accelerator not in ledger.buckets:
        return f"no schedulable node has {accelerator}"
    unready = span_unready(ledger, ask)
    if unready:
        return unready
    free = _free(ledger, accelerator)
    if free < ask.total:
        where = " on ready nodes" if ledger.ready_only else ""
        return (f"needs {ask.total} {accelerator} ({ask.replicas}x{ask.devices}, each "
                f"{shape_text(ask)}), {free} free{where}")
    return None


def _free(ledger: Ledger, accelerator: str) -> int:
    """Whole free devices of a type, on ready nodes only while the ledger says so."""
    free = ledger.type_whole[accelerator]
    if ledger.ready_only:
        free -= ledger.degraded_whole.get(accelerator, 0)
    return free


# ---------------------------------------------------------------------------------- placement
class SupernodeSpan:
    """The placement of a spanning ask (see the module docstring), under any policy's
    strategy: it honours `ask.scope` (the nodes of one group of the job's `within` tier)."""

    name = "span"

    def place(self, ledger: Ledger, ask: ReplicaAsk, ctx: PlaceContext) -> GroupFit | str:
        short = span_shortage(ledger, ask)
        if short:
            return short
        part = part_ask(ask)
        scope = set(ask.scope) if ask.scope is not None else None
        candidates = _candidates(ledger, ask, scope)
        mark = ledger.savepoint()
        slots: list[tuple[int, tuple[int, ...]]] = []
        spans: list[tuple[str, list[int]]] = []
        for index in range(ask.replicas):
            placed = _one_replica(ledger, ask, part, candidates, scope)
            if placed is None:
                ledger.rollback(mark)
                return _miss(ledger, ask, index)
            label, parts = placed
            slots.extend(parts)
            spans.append((label, [position for position, _ in parts]))
        return GroupFit(slots, _why(ledger, ask, spans))


def _one_replica(
    ledger: Ledger, ask: ReplicaAsk, part: ReplicaAsk, candidates: list[Group],
    scope: set[int] | None,
) -> tuple[str, list[tuple[int, tuple[int, ...]]]] | None:
    """One replica's parts, booked, in the first of `candidates` (best fit first) that holds
    them; None (nothing booked) when none does. Candidates passed over are dropped from the
    list: while a group is placed, free resources only shrink, so they cannot hold a later
    replica either, and the supernode just used keeps the least room and its first place."""
    size, ready = per_part(ask), ledger.ready_only
    for index, group in enumerate(candidates):
        if not _may_hold(group, ask, size, ready):
            continue
        mark = ledger.savepoint()
        parts = _parts_in(ledger, group, part, ask.parts, scope)
        if parts is not None:
            del candidates[:index]
            return group.label, parts
        ledger.rollback(mark)
    candidates.clear()
    return None


def _candidates(ledger: Ledger, ask: ReplicaAsk, scope: set[int] | None) -> list[Group]:
    """The type's supernodes (those with a node in `scope`, when given) that may hold a
    replica by their free-count histograms, fewest free devices first."""
    size, ready = per_part(ask), ledger.ready_only
    groups = ledger.tier_group_list.get((TIER, ask.accelerator), [])
    if scope is not None:
        labels = {ledger.nodes[position].supernode for position in scope}
        groups = [group for group in groups if group.label in labels]
    found = [group for group in groups if _may_hold(group, ask, size, ready)]
    found.sort(key=lambda group: (group.room(ready), group.label))
    return found


def _may_hold(group: Group, ask: ReplicaAsk, size: int, ready_only: bool) -> bool:
    """Whether a supernode has, by its histograms, the free devices for one replica and
    enough nodes with room for a part each."""
    return group.room(ready_only) >= ask.devices and \
        _roomy_nodes(group, size, ready_only) >= ask.parts


def _roomy_nodes(group: Group, size: int, ready_only: bool) -> int:
    """Members with at least `size` whole free devices (ready members only when asked)."""
    count = sum(group.hist[size:])
    if ready_only and group.sick_hist is not None:
        count -= sum(group.sick_hist[size:])
    return count


def _parts_in(
    ledger: Ledger, group: Group, part: ReplicaAsk, parts: int, scope: set[int] | None
) -> list[tuple[int, tuple[int, ...]]] | None:
    """`parts` parts on distinct members of `group` (inside `scope` when given), booked and in
    node order; None when its nodes cannot take them (the caller rolls back)."""
    whole, offset, size = ledger.whole, ledger.offset, part.devices
    members = [p for p in group.members
               if whole[p] >= size and (scope is None or p in scope)]
    members.sort(key=lambda p: (offset[p], whole[p], p))
    taken: list[tuple[int, tuple[int, ...]]] = []
    for position in members:
        devices = put_replica(ledger, position, part)
        if devices is not None:
            taken.append((position, devices))
            if len(taken) == parts:
                taken.sort()
                return taken
    return None


def _miss(ledger: Ledger, ask: ReplicaAsk, index: int) -> str:
    """Why replica `index` (counted from 0) found no supernode, naming the one with the most
    free devices."""
    groups = ledger.tier_group_list.get((TIER, ask.accelerator), ())
    ready = ledger.ready_only
    most = max(groups, key=lambda g: (g.room(ready), g.label), default=None)
    best = f"; most free: supernode {most.label} with {most.room(ready)}" if most else ""
    free = _free(ledger, ask.accelerator)
    return (f"{free} {ask.accelerator} are free but not in a shape the gang can use: replica "
            f"{index + 1} of {ask.replicas} needs {shape_text(ask)}, on distinct nodes with "
            f"{per_part(ask)} free each{best}")


def _why(ledger: Ledger, ask: ReplicaAsk, spans: list[tuple[str, list[int]]]) -> str:
    """'spans a supernode's link domain: ...; replica 1 spans t00, t01 of supernode sn0'."""
    nodes = ledger.nodes
    shown = [f"replica {i + 1} spans {', '.join(nodes[p].name for p in positions)} of "
             f"supernode {label}" for i, (label, positions) in enumerate(spans[:SHOWN_REPLICAS])]
    more = len(spans) - SHOWN_REPLICAS
    tail = f"; and {more} more replica(s)" if more > 0 else ""
    return (f"spans a supernode's link domain: each replica of {ask.devices} as "
            f"{shape_text(ask)} (best fit); " + "; ".join(shown) + tail)
