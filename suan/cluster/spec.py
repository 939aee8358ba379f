"""Cluster spec files: a Kubernetes-style YAML document that lists the nodes of a cluster.

    apiVersion: suan.ai/v1
    kind: Cluster
    metadata: {name: lab}
    spec:
      nodePools:
        - name: h100              # nodes h100-000, h100-001, ...
          count: 32
          accelerator: H100       # a catalog name or alias; omit for CPU-only nodes
          cpu: 192                # cores (fractions allowed, or "500m")
          memory: 2Ti             # Ki Mi Gi Ti Pi / k M G T P; a bare number is MiB
          topology: {nodesPerRack: 16, racksPerBlock: 2}
      nodes:
        - {name: login-0, cpu: 32, memory: 256Gi, zone: zone-0}

Pools expand first, in file order, then the explicit `nodes`. Generated topology labels
(`zone-0`, `block-00`, `rack-000`, `supernode-000`) are numbered cluster-wide, so two pools never
share a tier unless a pool names the tier's label itself. Every field, unit and default is
described in docs/cluster-spec.md. The file is read by the loader every spec file shares
(suan.specfile), quantities by the unit grammar they share (suan.jobs.units), and every mistake
is reported as a `SpecError` whose problems (shaped by suan.problems) name the field path
(`spec.nodePools.1.accelerator`), what was wrong and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Cluster, Node, NodeHealth
from suan.errors import FieldProblem, SpecError
from suan.jobs.units import (
    CPU_ALLOWED,
    MAX_MEMORY_MIB,
    MEMORY_ALLOWED,
    format_cpu,
    format_memory,
    parse_cpu_milli,
    parse_memory_mib,
)
from suan.problems import describe_errors, show_value
from suan.specfile import load_document, load_file

API_VERSION = "suan.ai/v1"
KIND = "Cluster"
__all__ = [
    "API_VERSION",
    "CPU_ALLOWED",
    "KIND",
    "MAX_MEMORY_MIB",
    "MEMORY_ALLOWED",
    "dump_cluster",
    "format_cpu",
    "format_memory",
    "load_cluster",
    "load_cluster_text",
    "parse_cluster",
    "parse_cpu",
    "parse_memory",
]
MAX_DEVICES = 1024
LABEL_WIDTH: dict[str, int] = {"zone": 1, "block": 2, "rack": 3, "supernode": 3}
"""Minimum digits of generated labels per tier (`zone-0`, `block-00`, `rack-000`)."""
SUPERNODE_PREFIX = "supernode-"

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


# --- quantities -------------------------------------------------------------------------------


def parse_memory(value: object) -> int:
    """Memory in MiB, read as in every spec file (`suan.jobs.units.parse_memory_mib`): a bare
    number is MiB, a unit is binary or decimal, and the result is rounded up to whole MiB.

    Raises UnitError (a ValueError) for anything else, for negative values and for more than
    `MAX_MEMORY_MIB`.
    """
    return parse_memory_mib(value)


def parse_cpu(value: object) -> int:
    """CPU in millicores, read as in every spec file (`suan.jobs.units.parse_cpu_milli`):
    cores (fractions allowed) or millicores ('500m'). Raises UnitError (a ValueError)."""
    return parse_cpu_milli(value)


# --- generated labels -------------------------------------------------------------------------


class LabelNumbering:
    """Hands out cluster-wide numbers for generated labels, per tier and prefix.

    Every pool (or generator run) that generates a tier takes fresh numbers, so generated racks,
    blocks, zones and supernodes of different pools never share a label by accident.
    """

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def take(self, tier: str, prefix: str, count: int) -> list[str]:
        """`count` new labels for `tier`: prefix + number, at least `LABEL_WIDTH[tier]` digits."""
        start = self._next.get((tier, prefix), 0)
        self._next[(tier, prefix)] = start + count
        width = LABEL_WIDTH[tier]
        return [f"{prefix}{number:0{width}d}" for number in range(start, start + count)]


@dataclass(frozen=True)
class RackLayout:
    """How generated racks group into blocks and zones.

    `racks_per_block` / `blocks_per_zone` of None put every rack in one block / every block in
    one zone. A fixed `zone` or `block` label replaces that tier's generated labels; once a tier
    is fixed, the wider tiers are never generated (a fixed `block` with no `zone` gives zone "").
    """

    racks_per_block: int | None = None
    blocks_per_zone: int | None = None
    zone: str | None = None
    block: str | None = None
    zone_prefix: str = "zone-"
    block_prefix: str = "block-"
    rack_prefix: str = "rack-"

    def rack_labels(self, racks: int, numbering: LabelNumbering) -> list[tuple[str, str, str]]:
        """(zone, block, rack) for each of `racks` new racks, in order."""
        rack_names = numbering.take("rack", self.rack_prefix, racks)
        if self.block is not None:
            return [(self.zone or "", self.block, rack) for rack in rack_names]
        block_of = _group_index(racks, self.racks_per_block)
        blocks = block_of[-1] + 1 if racks else 0
        block_names = numbering.take("block", self.block_prefix, blocks)
        if self.zone is not None:
            zone_of_block = [self.zone] * blocks
        else:
            zone_of = _group_index(blocks, self.blocks_per_zone)
            zone_names = numbering.take("zone", self.zone_prefix, zone_of[-1] + 1 if blocks else 0)
            zone_of_block = [zone_names[z] for z in zone_of]
        return [(zone_of_block[b], block_names[b], rack_names[r]) for r, b in enumerate(block_of)]


def _group_index(count: int, size: int | None) -> list[int]:
    """The group of each of `count` items when grouped `size` at a time (None: one group)."""
    return [index // size if size else 0 for index in range(count)]


def supernode_labels(count: int, size: int, numbering: LabelNumbering) -> list[str]:
    """Labels grouping `count` consecutive nodes into supernodes of `size` ("" when size is 0).

    The last supernode is partial when `size` does not divide `count`.
    """
    if size <= 0:
        return [""] * count
    names = numbering.take("supernode", SUPERNODE_PREFIX, math.ceil(count / size))
    return [names[index // size] for index in range(count)]


def node_names(prefix: str, count: int) -> list[str]:
    """`prefix-000` ... with at least three digits, more when `count` needs them."""
    width = max(3, len(str(count - 1)))
    return [f"{prefix}-{index:0{width}d}" for index in range(count)]


# --- document schema --------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True)
HealthName = Literal["ready", "degraded", "cordoned", "down"]


class _TopologySpec(BaseModel):
    model_config = _STRICT
    zone: str | None = Field(default=None, min_length=1)
    block: str | None = Field(default=None, min_length=1)
    rack: str | None = Field(default=None, min_length=1)
    nodes_per_rack: int | None = Field(default=None, alias="nodesPerRack", ge=1)
    racks_per_block: int | None = Field(default=None, alias="racksPerBlock", ge=1)
    blocks_per_zone: int | None = Field(default=None, alias="blocksPerZone", ge=1)
    zone_prefix: str = Field(default="zone-", alias="zonePrefix")
    block_prefix: str = Field(default="block-", alias="blockPrefix")
    rack_prefix: str = Field(default="rack-", alias="rackPrefix")


class _PoolSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=_NAME_PATTERN)
    count: int = Field(ge=0)
    accelerator: str | None = None
    devices_per_node: int | None = Field(
        default=None, alias="devicesPerNode", ge=0, le=MAX_DEVICES
    )
    cpu: Any = 0
    memory: Any = 0
    topology: _TopologySpec = Field(default_factory=_TopologySpec)
    supernode_size: int = Field(default=0, alias="supernodeSize", ge=0)
    health: HealthName = "ready"
    labels: dict[str, str] = Field(default_factory=dict)


class _NodeSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=_NAME_PATTERN)
    accelerator: str | None = None
    devices: int | None = Field(default=None, ge=0, le=MAX_DEVICES)
    cpu: Any = 0
    memory: Any = 0
    zone: str = ""
    block: str = ""
    rack: str = ""
    supernode: str = ""
    health: HealthName = "ready"
    unhealthy_devices: list[int] = Field(default_factory=list, alias="unhealthyDevices")
    domains: list[list[int]] | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class _Metadata(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""


class _ClusterSpec(BaseModel):
    model_config = _STRICT
    node_pools: list[_PoolSpec] = Field(default_factory=list, alias="nodePools")
    nodes: list[_NodeSpec] = Field(default_factory=list)


class _ClusterDocument(BaseModel):
    model_config = _STRICT
    api_version: Literal["suan.ai/v1"] = Field(alias="apiVersion")
    kind: Literal["Cluster"]
    metadata: _Metadata
    spec: _ClusterSpec


# --- building nodes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hardware:
    """What every node of a pool (or one explicit node) has: devices, domains, CPU, memory."""

    accelerator: str | None
    devices: int
    domains: tuple[tuple[int, ...], ...]
    cpu_milli: int
    memory_mib: int


class _Builder:
    """Collects nodes and problems while a document is expanded."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.numbering = LabelNumbering()
        self.nodes: list[Node] = []
        self.origin: dict[str, str] = {}
        self.problems: list[FieldProblem] = []

    def problem(self, path: str, message: str, allowed: str = "") -> None:
        self.problems.append(FieldProblem(path, message, allowed))

    def hardware(
        self, path: str, accelerator: str | None, devices: int | None, devices_key: str,
        cpu: object, memory: object,
    ) -> _Hardware | None:
        """Resolve the accelerator, device count, domains, CPU and memory; None on problems."""
        before = len(self.problems)
        cpu_milli = self._quantity(f"{path}.cpu", parse_cpu, cpu, CPU_ALLOWED)
        memory_mib = self._quantity(f"{path}.memory", parse_memory, memory, MEMORY_ALLOWED)
        if accelerator is None:
            if devices:
                self.problem(f"{path}.{devices_key}", f"{devices} devices but no accelerator",
                             "0, or name an accelerator")
            return None if len(self.problems) > before else _Hardware(
                None, 0, (), cpu_milli, memory_mib)
        accel = self.catalog.find(accelerator)
        if accel is None:
            self.problem(f"{path}.accelerator", f"unknown accelerator {accelerator!r}",
                         ", ".join(sorted(self.catalog.names())) + " (or an alias)")
            return None
        count = accel.devices_per_node if devices is None else devices
        if count < 1:
            self.problem(f"{path}.{devices_key}", "an accelerator node needs at least 1 device",
                         f"1 to {MAX_DEVICES}; omit accelerator for a CPU-only node")
        if len(self.problems) > before:
            return None
        return _Hardware(accel.name, count, accel.domain_layout(count), cpu_milli, memory_mib)

    def _quantity(
        self, path: str, parse: Callable[[object], int], value: object, allowed: str
    ) -> int:
        try:
            return parse(value)
        except ValueError as exc:
            self.problem(path, str(exc), allowed)
            return 0

    def add(self, node: Node, path: str) -> bool:
        """Add a node, or record a problem at `path`.name when the name is taken; True if added.

        `path` is where the node was defined: an explicit node or the pool that generated it.
        """
        if node.name in self.origin:
            self.problem(f"{path}.name", f"duplicate node name {node.name!r} "
                         f"(already defined by {self.origin[node.name]})", "unique node names")
            return False
        self.origin[node.name] = path
        self.nodes.append(node)
        return True


def _check_topology(topology: _TopologySpec, path: str) -> list[FieldProblem]:
    """Combinations of fixed labels and layout fields that contradict each other."""
    problems = []
    layout = topology.nodes_per_rack is not None
    checks = [
        (topology.rack is not None and layout, "rack",
         "a fixed rack label and nodesPerRack exclude each other"),
        (not layout and topology.racks_per_block is not None, "racksPerBlock",
         "needs nodesPerRack"),
        (not layout and topology.blocks_per_zone is not None, "blocksPerZone",
         "needs nodesPerRack"),
        (topology.block is not None and topology.racks_per_block is not None, "racksPerBlock",
         "a fixed block label and racksPerBlock exclude each other"),
        ((topology.zone is not None or topology.block is not None)
         and topology.blocks_per_zone is not None, "blocksPerZone",
         "zones are not generated when a zone or block label is fixed"),
    ]
    for failed, key, message in checks:
        if failed:
            problems.append(FieldProblem(f"{path}.{key}", message))
    return problems


def _check_supernode(
    catalog: Catalog, pool: _PoolSpec, hardware: _Hardware, path: str
) -> list[FieldProblem]:
    """A supernode may not hold more devices than the catalog's `supernode_devices` (if set)."""
    accel = catalog.find(hardware.accelerator) if hardware.accelerator else None
    limit = accel.supernode_devices if accel is not None else 0
    if not limit or pool.supernode_size * hardware.devices <= limit:
        return []
    return [FieldProblem(
        f"{path}.supernodeSize",
        f"{pool.supernode_size} nodes x {hardware.devices} devices exceed the "
        f"{limit}-device supernode of {hardware.accelerator}",
        f"0 to {limit // hardware.devices} nodes")]


def _pool_labels(
    pool: _PoolSpec, numbering: LabelNumbering
) -> list[tuple[str, str, str]]:
    """(zone, block, rack) for each node of the pool, from fixed labels or the layout."""
    topo = pool.topology
    if topo.nodes_per_rack is None:
        return [(topo.zone or "", topo.block or "", topo.rack or "")] * pool.count
    layout = RackLayout(
        racks_per_block=topo.racks_per_block, blocks_per_zone=topo.blocks_per_zone,
        zone=topo.zone, block=topo.block, zone_prefix=topo.zone_prefix,
        block_prefix=topo.block_prefix, rack_prefix=topo.rack_prefix,
    )
    racks = layout.rack_labels(math.ceil(pool.count / topo.nodes_per_rack), numbering)
    return [racks[index // topo.nodes_per_rack] for index in range(pool.count)]


def _expand_pool(builder: _Builder, pool: _PoolSpec, path: str) -> None:
    hardware = builder.hardware(path, pool.accelerator, pool.devices_per_node,
                                "devicesPerNode", pool.cpu, pool.memory)
    topology_problems = _check_topology(pool.topology, f"{path}.topology")
    if hardware is not None:
        topology_problems += _check_supernode(builder.catalog, pool, hardware, path)
    builder.problems.extend(topology_problems)
    if hardware is None or topology_problems:
        return
    labels = _pool_labels(pool, builder.numbering)
    supernodes = supernode_labels(pool.count, pool.supernode_size, builder.numbering)
    names = node_names(pool.name, pool.count)
    for index, name in enumerate(names):
        zone, block, rack = labels[index]
        node = Node(
            name=name, accelerator=hardware.accelerator, devices=hardware.devices,
            domains=hardware.domains, cpu_milli=hardware.cpu_milli,
            memory_mib=hardware.memory_mib, zone=zone, block=block, rack=rack,
            supernode=supernodes[index], health=NodeHealth(pool.health),
            labels=dict(pool.labels),
        )
        if not builder.add(node, path):
            return


def _check_devices(spec: _NodeSpec, devices: int, path: str) -> list[FieldProblem]:
    """Unhealthy device ids and explicit domains must name devices of this node."""
    problems = []
    ids = spec.unhealthy_devices
    allowed = f"distinct ids from 0 to {devices - 1}" if devices else "none (no devices)"
    if any(not 0 <= d < devices for d in ids) or len(set(ids)) != len(ids):
        problems.append(FieldProblem(f"{path}.unhealthyDevices", f"invalid device ids {ids}",
                                     allowed))
    if spec.domains is not None:
        flat = sorted(d for domain in spec.domains for d in domain)
        if flat != list(range(devices)) or any(not domain for domain in spec.domains):
            problems.append(FieldProblem(
                f"{path}.domains", f"domains {spec.domains} do not split the node's devices",
                f"non-empty lists that hold each id from 0 to {devices - 1} once"))
    return problems


def _add_node(builder: _Builder, spec: _NodeSpec, path: str) -> None:
    hardware = builder.hardware(path, spec.accelerator, spec.devices, "devices",
                                spec.cpu, spec.memory)
    if hardware is None:
        return
    device_problems = _check_devices(spec, hardware.devices, path)
    builder.problems.extend(device_problems)
    if device_problems:
        return
    domains = hardware.domains
    if spec.domains is not None:
        domains = tuple(tuple(domain) for domain in spec.domains)
    node = Node(
        name=spec.name, accelerator=hardware.accelerator, devices=hardware.devices,
        domains=domains, cpu_milli=hardware.cpu_milli, memory_mib=hardware.memory_mib,
        zone=spec.zone, block=spec.block, rack=spec.rack, supernode=spec.supernode,
        health=NodeHealth(spec.health), unhealthy_devices=frozenset(spec.unhealthy_devices),
        labels=dict(spec.labels),
    )
    builder.add(node, path)


def _check_pool_names(pools: list[_PoolSpec]) -> list[FieldProblem]:
    seen: dict[str, int] = {}
    problems = []
    for index, pool in enumerate(pools):
        if pool.name in seen:
            problems.append(FieldProblem(
                f"spec.nodePools.{index}.name",
                f"duplicate pool name {pool.name!r} (also spec.nodePools.{seen[pool.name]})",
                "unique pool names"))
        seen.setdefault(pool.name, index)
    return problems


# --- public API -------------------------------------------------------------------------------


def parse_cluster(document: Any, source: str, *, catalog: Catalog | None = None) -> Cluster:
    """Validate a cluster document (already parsed from YAML) and build its `Cluster`.

    Nodes come in file order: every pool's nodes, then the explicit `nodes`. Accelerator names
    resolve through `catalog` (default: `default_catalog()`) to canonical names, and each node's
    link domains come from the catalog's `domain_layout` unless the node lists `domains`.
    Raises `SpecError(source, problems)` listing every problem found.
    """
    if not isinstance(document, dict):
        message = f"expected a mapping (a Cluster document), got {show_value(document)}"
        raise SpecError(source, [FieldProblem("", message, "apiVersion, kind, metadata, spec")])
    try:
        parsed = _ClusterDocument.model_validate(document)
    except ValidationError as exc:
        raise SpecError(source, describe_errors(exc, _ClusterDocument)) from None
    builder = _Builder(catalog or default_catalog())
    pool_problems = _check_pool_names(parsed.spec.node_pools)
    builder.problems.extend(pool_problems)
    if not pool_problems:
        for index, pool in enumerate(parsed.spec.node_pools):
            _expand_pool(builder, pool, f"spec.nodePools.{index}")
    for index, node in enumerate(parsed.spec.nodes):
        _add_node(builder, node, f"spec.nodes.{index}")
    if not builder.problems and not builder.nodes:
        builder.problem("spec", "the cluster has no nodes", "nodePools with count > 0, or nodes")
    if builder.problems:
        raise SpecError(source, builder.problems)
    return Cluster(builder.nodes, parsed.metadata.name)


def load_cluster(path: str | Path, *, catalog: Catalog | None = None) -> Cluster:
    """Read a cluster spec file (YAML) with the loader every spec file shares
    (suan.specfile: size, depth and alias limits, each key once in a mapping). Raises
    `SpecError` naming the file and every problem."""
    return parse_cluster(load_file(path), str(path), catalog=catalog)


def load_cluster_text(
    text: str, source: str = "<text>", *, catalog: Catalog | None = None
) -> Cluster:
    """`load_cluster` for YAML text already in hand."""
    return parse_cluster(load_document(text, source), source, catalog=catalog)


def dump_cluster(cluster: Cluster, *, catalog: Catalog | None = None) -> dict[str, Any]:
    """A document that `parse_cluster` turns back into an equal cluster.

    Every node is written to the explicit `nodes` list (pools are not reconstructed); fields at
    their defaults are left out, and `domains` only when they differ from the catalog's layout.
    """
    catalog = catalog or default_catalog()
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": cluster.name},
        "spec": {"nodes": [_dump_node(node, catalog) for node in cluster]},
    }


def _dump_node(node: Node, catalog: Catalog) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": node.name}
    if node.accelerator is not None:
        entry["accelerator"] = node.accelerator
        entry["devices"] = node.devices
    entry["cpu"] = format_cpu(node.cpu_milli)
    entry["memory"] = format_memory(node.memory_mib)
    for tier in ("zone", "block", "rack", "supernode"):
        if getattr(node, tier):
            entry[tier] = getattr(node, tier)
    if node.health is not NodeHealth.READY:
        entry["health"] = node.health.value
    if node.unhealthy_devices:
        entry["unhealthyDevices"] = sorted(node.unhealthy_devices)
    accel = catalog.find(node.accelerator) if node.accelerator else None
    if accel is not None and accel.domain_layout(node.devices) != node.domains:
        entry["domains"] = [list(domain) for domain in node.domains]
    if node.labels:
        entry["labels"] = dict(node.labels)
    return entry
