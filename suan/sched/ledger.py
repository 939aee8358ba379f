"""The scheduler's working state for one cycle: free devices, CPU and memory per node.

A `Ledger` is derived from a `Snapshot` (which it never changes) and is mutated only through
`take`/`give`, each logged so that a gang placement can be tried and rolled back (the
transaction of the gang-reserve step). It keeps the indexes that make placement cheap at
10,000 nodes:

- per accelerator type, buckets of schedulable nodes by their count of wholly free devices;
- per topology group (supernode, rack, block, zone — keyed by type), a histogram of its nodes'
  whole-free counts, so a gang's smallest enclosing group is found without visiting nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from weakref import WeakKeyDictionary

from suan.catalog import Catalog
from suan.catalog.model import AllocationRule
from suan.cluster.model import Cluster, Node, NodeHealth
from suan.cluster.snapshot import Allocation, ReplicaPlacement, Snapshot, part_share
from suan.jobs.model import ReplicaGroup

WHOLE = 1000
FIRST_CHUNK = 32
"""Nodes copied from a bucket before iterating it; most searches stop within them."""
UNDECLARED = 1 << 62
"""CPU or memory of a node that declares none: never the limiting resource."""
GROUP_TIERS: tuple[str, ...] = ("supernode", "rack", "block", "zone")
"""Topology tiers that group nodes, from the narrowest to the widest."""


@dataclass
class Group:
    """Nodes of one accelerator type that share a topology label at one tier.

    `hist` counts members by whole free devices and `whole` sums them; `sick_hist` and `sick`
    do the same for its degraded members only (None and 0 when it has none)."""

    tier: str
    label: str
    accelerator: str
    members: list[int]
    hist: list[int]
    whole: int = 0
    size: int = 0
    sick: int = 0
    sick_hist: list[int] | None = None

    def capacity(self, per_replica: int, ready_only: bool = False) -> int:
        """Upper bound on replicas of `per_replica` whole devices its nodes (its ready nodes
        when `ready_only`) can hold."""
        total = sum(count * (free // per_replica) for free, count in enumerate(self.hist) if count)
        if ready_only and self.sick_hist is not None:
            total -= sum(count * (free // per_replica)
                         for free, count in enumerate(self.sick_hist) if count)
        return total

    def room(self, ready_only: bool) -> int:
        """Whole free devices on its nodes, on its ready nodes only when `ready_only`."""
        return self.whole - self.sick if ready_only else self.whole


class Layout:
    """What a cluster's nodes look like with nothing running: built once per Cluster object
    (nodes are immutable) and copied by every cycle's Ledger."""

    def __init__(self, cluster: Cluster, catalog: Catalog):
        self.nodes = cluster.nodes
        self.catalog = catalog
        self._init_resources()
        self._init_indexes()
        self._init_registered()

    def _init_resources(self) -> None:
        self.free: list[list[int]] = []
        self.whole: list[int] = []
        self.cpu: list[int] = []
        self.mem: list[int] = []
        self.schedulable: list[bool] = []
        self.takes_work: list[bool] = []
        self.rule: list[AllocationRule | None] = []
        rules: dict[str, AllocationRule] = {}
        for node in self.nodes:
            devices = [WHOLE] * node.devices
            for bad in node.unhealthy_devices:
                if 0 <= bad < node.devices:
                    devices[bad] = 0
            self.free.append(devices)
            self.whole.append(devices.count(WHOLE))
            self.cpu.append(node.cpu_milli or UNDECLARED)
            self.mem.append(node.memory_mib or UNDECLARED)
            self.schedulable.append(node.health.schedulable and node.accelerator is not None)
            self.takes_work.append(node.health.schedulable)
            accel = node.accelerator
            if accel is not None and accel not in rules:
                found = self.catalog.find(accel)
                rules[accel] = found.allocation if found else AllocationRule()
            self.rule.append(rules.get(accel) if accel else None)
        self.type_rules: dict[str, AllocationRule] = rules

    def _init_indexes(self) -> None:
        self.max_devices = max((node.devices for node in self.nodes), default=0)
        size = self.max_devices + 1
        self.offset: list[int] = [
            size if node.health == NodeHealth.DEGRADED else 0 for node in self.nodes
        ]
        self.any_degraded = any(
            offset and takes for offset, takes in zip(self.offset, self.takes_work, strict=True)
        )
        self.buckets: dict[str, list[dict[int, None]]] = {}
        self.type_whole: dict[str, int] = {}
        self.degraded_whole: dict[str, int] = {}
        self.type_max_node: dict[str, int] = {}
        self.groups: list[Group] = []
        self.node_groups: list[tuple[int, ...]] = []
        self.tier_groups: dict[tuple[str, str], list[int]] = {}
        self.tier_max_size: dict[tuple[str, str], int] = {}
        keys: dict[tuple[str, str, str], int] = {}
        for position, node in enumerate(self.nodes):
            accel = node.accelerator
            if not self.schedulable[position] or accel is None:
                self.node_groups.append(())
                continue
            free = self.whole[position]
            buckets = self.buckets.setdefault(accel, [{} for _ in range(2 * size)])
            buckets[self.offset[position] + free][position] = None
            self.type_whole[accel] = self.type_whole.get(accel, 0) + free
            if self.offset[position]:
                self.degraded_whole[accel] = self.degraded_whole.get(accel, 0) + free
            self.type_max_node[accel] = max(self.type_max_node.get(accel, 0), free)
            member_of = []
            for tier in GROUP_TIERS:
                label = getattr(node, tier)
                if not label:
                    continue
                key = (tier, accel, label)
                gid = keys.get(key)
                if gid is None:
                    gid = keys[key] = len(self.groups)
                    self.groups.append(Group(tier, label, accel, [], [0] * size))
                    self.tier_groups.setdefault((tier, accel), []).append(gid)
                group = self.groups[gid]
                group.members.append(position)
                group.hist[free] += 1
                group.whole += free
                group.size += free
                if self.offset[position]:
                    if group.sick_hist is None:
                        group.sick_hist = [0] * size
                    group.sick_hist[free] += 1
                    group.sick += free
                member_of.append(gid)
            self.node_groups.append(tuple(member_of))
        self.group_ids: dict[tuple[str, str, str], int] = keys
        for (tier, accel), gids in self.tier_groups.items():
            self.tier_max_size[(tier, accel)] = max(self.groups[g].size for g in gids)
        self.capacity: dict[str, int] = dict(self.type_whole)
        self.types_by_speed: tuple[str, ...] = tuple(sorted(self.buckets, key=self._speed_rank))

    def _init_registered(self) -> None:
        """Per accelerator type, what the cluster registers whatever the nodes' health (for
        telling a job that can never fit from one that waits for nodes to come back): devices
        in all, devices of the largest node, the ready nodes' names, and a phrase per node
        that is not ready or has unhealthy devices."""
        self.registered: dict[str, int] = {}
        self.registered_max_node: dict[str, int] = {}
        self.ready_nodes: dict[str, list[str]] = {}
        self.not_ready: dict[str, list[str]] = {}
        supernodes: dict[tuple[str, str], int] = {}
        labelled: dict[tuple[str, str, str], int] = {}
        for position, node in enumerate(self.nodes):
            accel = node.accelerator
            if accel is None:
                continue
            for tier in GROUP_TIERS:
                if getattr(node, tier):
                    key3 = (tier, accel, getattr(node, tier))
                    labelled[key3] = labelled.get(key3, 0) + node.devices
            self.registered[accel] = self.registered.get(accel, 0) + node.devices
            self.registered_max_node[accel] = max(self.registered_max_node.get(accel, 0),
                                                  node.devices)
            if node.supernode:
                key = (accel, node.supernode)
                supernodes[key] = supernodes.get(key, 0) + node.devices
            if not self.schedulable[position]:
                self.not_ready.setdefault(accel, []).append(f"{node.name} {node.health}")
                continue
            self.ready_nodes.setdefault(accel, []).append(node.name)
            bad = node.devices - self.whole[position]
            if bad:
                self.not_ready.setdefault(accel, []).append(
                    f"{node.name}: {bad} of {node.devices} devices unhealthy")

        self.registered_tier_max: dict[tuple[str, str], int] = {}
        """Per (tier, type), the devices under its largest label, whatever the nodes' health."""
        for (tier, accel, _), devices in labelled.items():
            key = (tier, accel)
            self.registered_tier_max[key] = max(self.registered_tier_max.get(key, 0), devices)
        self.registered_supernode: dict[str, int] = {}
        """Per type, the devices of its largest supernode, whatever the nodes' health."""
        for (accel, _), devices in supernodes.items():
            self.registered_supernode[accel] = max(self.registered_supernode.get(accel, 0),
                                                   devices)
        self.span_cache: dict[tuple[str, int], int] = {}

    def span_parts(self, accelerator: str, count: int) -> int:
        """`AcceleratorType.span_parts` of the type (1 for a type the catalog lacks),
        memoised per (type, count)."""
        key = (accelerator, count)
        parts = self.span_cache.get(key)
        if parts is None:
            accel = self.catalog.find(accelerator)
            parts = self.span_cache[key] = accel.span_parts(count) if accel else 1
        return parts

    def _speed_rank(self, name: str) -> tuple[float, str]:
        accel = self.catalog.find(name)
        return (-(accel.relative_speed if accel else 1.0), name)


_LAYOUTS: WeakKeyDictionary[Cluster, tuple[Catalog, Layout]] = WeakKeyDictionary()


def layout_of(cluster: Cluster, catalog: Catalog) -> Layout:
    """The cached empty-cluster layout of `cluster` (rebuilt if the catalog differs)."""
    cached = _LAYOUTS.get(cluster)
    if cached is not None and cached[0] is catalog:
        return cached[1]
    layout = Layout(cluster, catalog)
    _LAYOUTS[cluster] = (catalog, layout)
    return layout


class Ledger:
    """Mutable free-resource state with an undo log. Node indexes follow `cluster.nodes`.

    While `ready_only` is set (see `only_ready`), degraded nodes take no new work: the node
    queries skip them and `suan.sched.placement.put_replica` refuses them.
    """

    def __init__(self, snapshot: Snapshot, catalog: Catalog):
        self.snapshot = snapshot
        self.catalog = catalog
        layout = layout_of(snapshot.cluster, catalog)
        self.layout = layout
        self.nodes: tuple[Node, ...] = snapshot.cluster.nodes
        self.index = snapshot.cluster.index
        self._log: list[tuple[int, tuple[int, ...], int, int, int]] = []
        self.generation = 0
        self.free: list[list[int]] = [row[:] for row in layout.free]
        self.whole: list[int] = layout.whole[:]
        self.cpu: list[int] = layout.cpu[:]
        self.mem: list[int] = layout.mem[:]
        self.schedulable = layout.schedulable
        self.takes_work = layout.takes_work
        self.rule = layout.rule
        self.type_rules = layout.type_rules
        self.node_groups = layout.node_groups
        self.tier_groups = layout.tier_groups
        self.tier_max_size = layout.tier_max_size
        self.max_devices = layout.max_devices
        self.offset = layout.offset
        self.any_degraded = layout.any_degraded
        self.group_ids = layout.group_ids
        self.ready_only = False
        self.type_max_node = layout.type_max_node
        self.capacity = layout.capacity
        self.types_by_speed = layout.types_by_speed
        self.registered = layout.registered
        self.registered_max_node = layout.registered_max_node
        self.type_whole: dict[str, int] = dict(layout.type_whole)
        self.degraded_whole: dict[str, int] = dict(layout.degraded_whole)
        self.buckets: dict[str, list[dict[int, None]]] = {
            accel: [bucket.copy() for bucket in buckets]
            for accel, buckets in layout.buckets.items()
        }
        self.groups: list[Group] = [
            Group(g.tier, g.label, g.accelerator, g.members, g.hist[:], g.whole, g.size, g.sick,
                  None if g.sick_hist is None else g.sick_hist[:])
            for g in layout.groups
        ]
        self.tier_group_list: dict[tuple[str, str], list[Group]] = {
            key: [self.groups[gid] for gid in gids] for key, gids in layout.tier_groups.items()
        }
        change, index = self._change, self.index
        for alloc in snapshot.running:
            groups = alloc.job.groups
            for replica in alloc.replicas:
                position = index.get(replica.node)
                if position is not None:
                    group = groups[replica.group]
                    cpu, mem = group.cpu_milli, group.memory_mib
                    if len(replica.devices) < group.accelerators:
                        cpu, mem = _part_resources(group, replica)
                    change(position, replica.devices, -replica.milli, -cpu, -mem)

    # ----------------------------------------------------------------- mutation
    def _reindex(self, position: int, before: int, after: int) -> None:
        if before == after or not self.schedulable[position]:
            return
        accel = self.nodes[position].accelerator
        assert accel is not None
        buckets = self.buckets[accel]
        offset = self.offset[position]
        del buckets[offset + before][position]
        buckets[offset + after][position] = None
        self.type_whole[accel] += after - before
        if offset:
            self.degraded_whole[accel] += after - before
        for gid in self.node_groups[position]:
            group = self.groups[gid]
            group.hist[before] -= 1
            group.hist[after] += 1
            group.whole += after - before
            if offset:
                sick = group.sick_hist
                assert sick is not None
                sick[before] -= 1
                sick[after] += 1
                group.sick += after - before

    def _change(
        self, position: int, devices: tuple[int, ...], milli: int, cpu: int, mem: int
    ) -> None:
        """Add `milli` (negative: remove) to each device, and CPU/memory likewise."""
        free = self.free[position]
        before = self.whole[position]
        after = before
        for device in devices:
            if free[device] == WHOLE:
                after -= 1
            free[device] += milli
            if free[device] == WHOLE:
                after += 1
        self.whole[position] = after
        self.cpu[position] += cpu
        self.mem[position] += mem
        self._reindex(position, before, after)

    def take(self, position: int, devices: tuple[int, ...], milli: int, cpu: int, mem: int) -> None:
        """Book `milli` of each device in `devices`, plus CPU and memory, on a node."""
        self._change(position, devices, -milli, -cpu, -mem)
        self._log.append((position, devices, -milli, -cpu, -mem))

    def give(self, position: int, devices: tuple[int, ...], milli: int, cpu: int, mem: int) -> None:
        """Return what `take` booked."""
        self._change(position, devices, milli, cpu, mem)
        self._log.append((position, devices, milli, cpu, mem))

    def grew(self) -> None:
        """Record that capacity really grew (a committed preemption), which invalidates every
        earlier 'does not fit' verdict. Trial releases that are rolled back do not count."""
        self.generation += 1

    def savepoint(self) -> int:
        """A mark to roll back to; savepoints nest."""
        return len(self._log)

    def commit(self) -> None:
        """Make every change so far permanent: drop the undo records (no savepoint is open)."""
        self._log.clear()

    def rollback(self, mark: int) -> None:
        """Undo every take/give since `mark`, newest first, back to exactly that state."""
        log = self._log
        while len(log) > mark:
            position, devices, milli, cpu, mem = log.pop()
            self._change(position, devices, -milli, -cpu, -mem)

    # ----------------------------------------------------------------- allocations
    def apply_allocation(self, alloc: Allocation) -> None:
        """Book a running allocation's devices (building from the snapshot)."""
        self._book(alloc, self.take)

    def release_allocation(self, alloc: Allocation) -> None:
        """Give back a running allocation's devices (a preemption being simulated)."""
        self._book(alloc, self.give)

    def _book(self, alloc: Allocation, change: Callable[..., None]) -> None:
        groups, index = alloc.job.groups, self.index
        for replica in alloc.replicas:
            group = groups[replica.group]
            position = index.get(replica.node)
            if position is not None:
                cpu, mem = group.cpu_milli, group.memory_mib
                if len(replica.devices) < group.accelerators:
                    cpu, mem = _part_resources(group, replica)
                change(position, replica.devices, replica.milli, cpu, mem)

    @contextmanager
    def only_ready(self) -> Iterator[None]:
        """Within the block, degraded nodes take no new work (the previous mode is restored)."""
        was = self.ready_only
        self.ready_only = True
        try:
            yield
        finally:
            self.ready_only = was

    # ----------------------------------------------------------------- queries
    def nodes_with(self, accelerator: str, minimum: int, *, largest_first: bool) -> Iterator[int]:
        """Schedulable nodes of a type with at least `minimum` whole free devices: ready nodes
        first, degraded ones last (none while `ready_only`).

        Best fit (fewest free first) unless `largest_first`. Within a bucket, node order is
        the order in which nodes entered it, which is deterministic.
        """
        buckets = self.buckets.get(accelerator)
        if not buckets:
            return
        size = len(buckets) // 2
        counts = range(size - 1, minimum - 1, -1) if largest_first else range(
            max(minimum, 0), size
        )
        for offset in (0,) if self.ready_only else (0, size):
            for count in counts:
                bucket = buckets[offset + count]
                if bucket:
                    yield from _stable_iter(bucket)

    def nodes_with_share(self, accelerator: str, milli: int) -> Iterator[int]:
        """Nodes of a type where some device has at least `milli` free (fractional requests),
        the fullest first, ready nodes before degraded ones (none while `ready_only`)."""
        buckets = self.buckets.get(accelerator)
        if not buckets:
            return
        for bucket in buckets[: len(buckets) // 2] if self.ready_only else buckets:
            for position in _stable_iter(bucket):
                if max(self.free[position], default=0) >= milli:
                    yield position

    def accelerators(self) -> list[str]:
        return list(self.buckets)


def _part_resources(group: ReplicaGroup, replica: ReplicaPlacement) -> tuple[int, int]:
    """CPU and memory a part of a spanning replica holds (its devices' share)."""
    held, whole = len(replica.devices), group.accelerators
    return (part_share(group.cpu_milli, held, whole), part_share(group.memory_mib, held, whole))


def _stable_iter(bucket: dict[int, None]) -> Iterator[int]:
    """Iterate a bucket that may change meanwhile: a short copied prefix first, then a copy of
    the rest only if the caller keeps going."""
    head = list(islice(bucket, FIRST_CHUNK))
    yield from head
    if len(head) == FIRST_CHUNK:
        seen = set(head)
        yield from [position for position in bucket if position not in seen]
