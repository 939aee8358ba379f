"""Nodes and clusters.

A `Node` holds devices of one accelerator type (or none), grouped into intra-node link domains,
plus CPU and memory. Its place in the network is given by topology labels, from the widest tier
to the narrowest: zone > block > rack > node. A `supernode` label marks nodes whose link domain
spans machines (a 72-GPU NVLink rack, a 384-NPU Ascend supernode): nodes in one supernode are
closer than nodes that merely share a rack.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

TOPOLOGY_TIERS: tuple[str, ...] = ("zone", "block", "rack")
"""Topology tiers from the widest to the narrowest; a node is the tier below `rack`."""

DISTANCE_SAME_NODE = 0
DISTANCE_SAME_SUPERNODE = 1
DISTANCE_SAME_RACK = 2
DISTANCE_SAME_BLOCK = 3
DISTANCE_SAME_ZONE = 4
DISTANCE_FAR = 5


class NodeHealth(StrEnum):
    """Node condition. Only `ready` and `degraded` nodes take new work."""

    READY = "ready"
    DEGRADED = "degraded"
    CORDONED = "cordoned"
    DOWN = "down"

    @property
    def schedulable(self) -> bool:
        return self in (NodeHealth.READY, NodeHealth.DEGRADED)


@dataclass(frozen=True)
class Node:
    """One machine. `domains` lists device ids per intra-node link domain.

    `accelerator` is a canonical catalog name, or None for a CPU-only node. Devices listed in
    `unhealthy_devices` are never allocated. `health_reason` says why a node is not ready, in
    the words of whoever found it (an engine's drain reason, a health check).
    """

    name: str
    accelerator: str | None
    devices: int
    domains: tuple[tuple[int, ...], ...]
    cpu_milli: int = 0
    memory_mib: int = 0
    zone: str = ""
    block: str = ""
    rack: str = ""
    supernode: str = ""
    health: NodeHealth = NodeHealth.READY
    health_reason: str = field(default="", compare=False)
    unhealthy_devices: frozenset[int] = frozenset()
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def tier(self, name: str) -> str:
        """The node's label at topology tier `name` (zone, block, rack, supernode or node)."""
        if name == "node":
            return self.name
        return getattr(self, name)

    @property
    def usable_devices(self) -> int:
        return self.devices - len(self.unhealthy_devices)


def topology_distance(a: Node, b: Node) -> int:
    """Hops between two nodes on the topology tree: 0 same node ... 5 different zones.

    Empty labels never match, so a cluster without topology labels treats every pair of
    distinct nodes as far apart.
    """
    if a.name == b.name:
        return DISTANCE_SAME_NODE
    if a.supernode and a.supernode == b.supernode:
        return DISTANCE_SAME_SUPERNODE
    for tier, distance in (
        ("rack", DISTANCE_SAME_RACK),
        ("block", DISTANCE_SAME_BLOCK),
        ("zone", DISTANCE_SAME_ZONE),
    ):
        label = getattr(a, tier)
        if label and label == getattr(b, tier):
            return distance
    return DISTANCE_FAR


class Cluster:
    """An ordered set of nodes, looked up by name. Node order is the index order everywhere."""

    def __init__(self, nodes: Iterable[Node], name: str = "cluster"):
        self.name = name
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.index: dict[str, int] = {}
        for position, node in enumerate(self.nodes):
            if node.name in self.index:
                raise ValueError(f"duplicate node name {node.name!r}")
            self.index[node.name] = position

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> Node:
        return self.nodes[self.index[name]]

    def with_health(self, name: str, health: NodeHealth) -> Cluster:
        """A copy with one node's health changed (nodes are immutable)."""
        from dataclasses import replace

        nodes = list(self.nodes)
        nodes[self.index[name]] = replace(nodes[self.index[name]], health=health)
        return Cluster(nodes, self.name)

    def capacity(self) -> dict[str, int]:
        """Usable devices per accelerator type, over schedulable nodes."""
        totals: dict[str, int] = {}
        for node in self.nodes:
            if node.accelerator and node.health.schedulable:
                totals[node.accelerator] = totals.get(node.accelerator, 0) + node.usable_devices
        return totals
