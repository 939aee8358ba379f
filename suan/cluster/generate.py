"""Synthetic clusters of any size, for tests, benchmarks and simulations.

`generate_cluster(10_000)` builds 10,000 nodes of 8 H100 named `node-00000` ... in racks of 32
(`rack-000` ...), 8 racks to a block (`block-00` ...), all blocks in `zone-0`. A `mix` of
accelerator types gives each type whole racks; `seed` shuffles which racks get which type.
`cluster_from_shorthand("4x8xH100+2x910B")` reads the short form the CLI accepts. The same
inputs always give the same cluster.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Cluster, Node
from suan.cluster.spec import (
    CPU_ALLOWED,
    MAX_DEVICES,
    MEMORY_ALLOWED,
    LabelNumbering,
    RackLayout,
    parse_cpu,
    parse_memory,
)
from suan.errors import FieldProblem, SpecError

SOURCE = "generate_cluster"
NODE_PREFIX = "node-"
_TERM = re.compile(r"^\s*(\d+)\s*x\s*(?:(\d+)\s*x\s*)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*$")


@dataclass(frozen=True)
class NodeGroup:
    """`count` nodes of one accelerator type (None: CPU-only), `devices` each (None: catalog)."""

    accelerator: str | None
    count: int
    devices: int | None = None


@dataclass(frozen=True)
class _Shape:
    """The resolved hardware of one group: canonical name, devices and link domains."""

    accelerator: str | None
    devices: int
    domains: tuple[tuple[int, ...], ...]


def generate_cluster(
    nodes: int,
    accelerator: str | None = "H100",
    devices_per_node: int | None = None,
    nodes_per_rack: int = 32,
    racks_per_block: int | None = 8,
    blocks_per_zone: int | None = None,
    supernode_nodes: int = 0,
    mix: Sequence[tuple[str, float]] | None = None,
    cpu: float | str = 128,
    memory: int | str = "1Ti",
    seed: int = 0,
    *,
    name: str = "synthetic",
    catalog: Catalog | None = None,
) -> Cluster:
    """A synthetic cluster of `nodes` nodes.

    - Every node has `devices_per_node` devices (default: the catalog's) of `accelerator`
      (None: CPU-only), or, with `mix`, of the listed types in proportion to their weights
      (largest-remainder rounding, so the counts add up to `nodes`).
    - Nodes are `node-00000` ... in order; racks hold `nodes_per_rack` nodes of one type (each
      type starts a new rack); `racks_per_block` racks make a block and `blocks_per_zone` blocks
      a zone (None: all in one). Labels are `zone-0`, `block-00`, `rack-000`.
    - With a mix, racks are shuffled by `random.Random(seed)`; nothing else is random.
    - `supernode_nodes` > 0 groups consecutive nodes of one type into supernodes of that many
      nodes (`supernode-000` ...); a type change starts a new one.
    - `cpu` (cores) and `memory` (MiB or a unit string) use the cluster spec's units.

    Raises `SpecError` naming the argument for invalid values.
    """
    _check_layout(nodes, nodes_per_rack, racks_per_block, blocks_per_zone, supernode_nodes)
    if mix:
        groups = _mix_groups(nodes, mix, devices_per_node)
    else:
        groups = [NodeGroup(accelerator, nodes, devices_per_node)]
    return build_cluster(
        groups, nodes_per_rack=nodes_per_rack, racks_per_block=racks_per_block,
        blocks_per_zone=blocks_per_zone, supernode_nodes=supernode_nodes, cpu=cpu,
        memory=memory, shuffle_seed=seed if len(groups) > 1 else None, name=name,
        catalog=catalog,
    )


def build_cluster(
    groups: Sequence[NodeGroup],
    *,
    nodes_per_rack: int = 32,
    racks_per_block: int | None = 8,
    blocks_per_zone: int | None = None,
    supernode_nodes: int = 0,
    cpu: float | str = 128,
    memory: int | str = "1Ti",
    shuffle_seed: int | None = None,
    name: str = "synthetic",
    catalog: Catalog | None = None,
) -> Cluster:
    """Nodes for each group in order, each group in whole racks, laid out as in
    `generate_cluster`; `shuffle_seed` (None: keep order) shuffles the racks.
    """
    total = sum(group.count for group in groups)
    _check_layout(total, nodes_per_rack, racks_per_block, blocks_per_zone, supernode_nodes)
    cpu_milli = _argument("cpu", parse_cpu, cpu, CPU_ALLOWED)
    memory_mib = _argument("memory", parse_memory, memory, MEMORY_ALLOWED)
    shapes = _resolve(groups, catalog or default_catalog())
    racks = [
        (shape, min(nodes_per_rack, group.count - start))
        for group, shape in zip(groups, shapes, strict=True)
        for start in range(0, group.count, nodes_per_rack)
    ]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(racks)
    layout = RackLayout(racks_per_block=racks_per_block, blocks_per_zone=blocks_per_zone)
    numbering = LabelNumbering()
    labels = layout.rack_labels(len(racks), numbering)
    width = max(5, len(str(total - 1)))
    built: list[Node] = []
    supernode = _SupernodeCounter(supernode_nodes, numbering)
    for (shape, size), (zone, block, rack) in zip(racks, labels, strict=True):
        for _ in range(size):
            built.append(Node(
                name=f"{NODE_PREFIX}{len(built):0{width}d}", accelerator=shape.accelerator,
                devices=shape.devices, domains=shape.domains, cpu_milli=cpu_milli,
                memory_mib=memory_mib, zone=zone, block=block, rack=rack,
                supernode=supernode.next(shape.accelerator),
            ))
    return Cluster(built, name)


class _SupernodeCounter:
    """Hands each node its supernode label: `size` consecutive nodes of one type per label."""

    def __init__(self, size: int, numbering: LabelNumbering):
        self.size = size
        self.numbering = numbering
        self.label = ""
        self.members = 0
        self.kind: str | None = None

    def next(self, accelerator: str | None) -> str:
        if self.size <= 0:
            return ""
        if self.members == self.size or accelerator != self.kind or not self.label:
            self.label = self.numbering.take("supernode", "supernode-", 1)[0]
            self.members, self.kind = 0, accelerator
        self.members += 1
        return self.label


def _check_layout(
    nodes: int, nodes_per_rack: int, racks_per_block: int | None,
    blocks_per_zone: int | None, supernode_nodes: int,
) -> None:
    checks = [
        ("nodes", nodes, 1, "at least 1"),
        ("nodes_per_rack", nodes_per_rack, 1, "at least 1"),
        ("racks_per_block", racks_per_block, 1, "at least 1, or None for one block"),
        ("blocks_per_zone", blocks_per_zone, 1, "at least 1, or None for one zone"),
        ("supernode_nodes", supernode_nodes, 0, "0 (no supernodes) or more"),
    ]
    problems = [
        FieldProblem(field, f"got {value!r}", allowed)
        for field, value, low, allowed in checks
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low)
    ]
    if problems:
        raise SpecError(SOURCE, problems)


def _argument(field: str, parse: Callable[[object], int], value: object, allowed: str) -> int:
    try:
        return parse(value)
    except ValueError as exc:
        raise SpecError(SOURCE, [FieldProblem(field, str(exc), allowed)]) from None


def _mix_groups(
    nodes: int, mix: Sequence[tuple[str, float]], devices: int | None
) -> list[NodeGroup]:
    """Split `nodes` by the mix's weights with largest-remainder rounding (ties: mix order)."""
    weights = [weight for _, weight in mix]
    if any(isinstance(w, bool) or not isinstance(w, int | float) or not w > 0 for w in weights):
        raise SpecError(SOURCE, [FieldProblem("mix", f"weights {weights}", "numbers > 0")])
    shares = [nodes * weight / sum(weights) for weight in weights]
    counts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(mix)), key=lambda i: (counts[i] - shares[i], i))
    for index in by_remainder[: nodes - sum(counts)]:
        counts[index] += 1
    return [
        NodeGroup(accel, count, devices)
        for (accel, _), count in zip(mix, counts, strict=True)
    ]


def _resolve(groups: Sequence[NodeGroup], catalog: Catalog) -> list[_Shape]:
    """Canonical names, device counts and domains; SpecError for unknown types or bad counts."""
    shapes, problems = [], []
    for index, group in enumerate(groups):
        where = f"groups.{index}"
        if group.accelerator is None:
            shapes.append(_Shape(None, 0, ()))
            continue
        accel = catalog.find(group.accelerator)
        if accel is None:
            problems.append(FieldProblem(
                f"{where}.accelerator", f"unknown accelerator {group.accelerator!r}",
                ", ".join(sorted(catalog.names())) + " (or an alias)"))
            continue
        devices = accel.devices_per_node if group.devices is None else group.devices
        if not 1 <= devices <= MAX_DEVICES:
            problems.append(FieldProblem(f"{where}.devices", f"got {devices}",
                                         f"1 to {MAX_DEVICES}"))
            continue
        shapes.append(_Shape(accel.name, devices, accel.domain_layout(devices)))
    if problems:
        raise SpecError(SOURCE, problems)
    return shapes


def parse_shorthand(text: str) -> list[NodeGroup]:
    """Groups from the short form `NODESx[DEVICESx]ACCEL`, terms joined by `+` or `,`.

    `"4x8xH100"` is 4 nodes of 8 H100; `"16x910B"` is 16 nodes of Ascend 910B with the
    catalog's devices per node. Names are not checked here. Raises `SpecError` per bad term.
    """
    groups, problems = [], []
    for index, term in enumerate(re.split(r"[+,]", text)):
        match = _TERM.match(term)
        if match is None:
            problems.append(FieldProblem(
                f"term {index + 1}", f"cannot read {term.strip()!r}",
                "NODESxACCEL or NODESxDEVICESxACCEL, e.g. '4x8xH100', joined by '+'"))
            continue
        devices = int(match.group(2)) if match.group(2) else None
        groups.append(NodeGroup(match.group(3), int(match.group(1)), devices))
    if problems:
        raise SpecError(f"cluster shorthand {text!r}", problems)
    return groups


def cluster_from_shorthand(
    text: str,
    *,
    nodes_per_rack: int = 32,
    racks_per_block: int | None = 8,
    blocks_per_zone: int | None = None,
    supernode_nodes: int = 0,
    name: str | None = None,
    catalog: Catalog | None = None,
) -> Cluster:
    """The cluster a shorthand names, laid out like `generate_cluster` (terms in order)."""
    return build_cluster(
        parse_shorthand(text), nodes_per_rack=nodes_per_rack, racks_per_block=racks_per_block,
        blocks_per_zone=blocks_per_zone, supernode_nodes=supernode_nodes,
        name=name or text.replace(" ", ""), catalog=catalog,
    )
