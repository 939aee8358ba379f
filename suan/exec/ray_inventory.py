"""Ray's nodes as scheduler `Node`s: resources through the catalog, labels as topology, health.

    nodes = ray_nodes(records, RayInventoryRules(...), catalog)   # records: ray.nodes()

- Name: the node's `suan/node` label (`RayInventoryRules.node_label`), else its host name.
  Ray keeps a record per node process, so a node that was restarted appears once dead and
  once alive under one name; the alive record wins.
- Accelerators: a custom resource `accel:<type>` (the type mapped through the catalog) is
  preferred; else Ray's `GPU` count with the type from Ray's own `accelerator_type:<type>`
  resource or the configured default type. A type the catalog cannot map leaves the node
  without accelerators and cordoned, with a reason that names the type.
- Topology: each tier (zone, block, rack, supernode) from its configured label key.
- Health: a dead node is `down`, its reason quoting Ray's DeathReasonMessage.

Labels carry `engine=ray`, the Ray node id and address, and which Ray resource holds the
devices (`ray.resource`) and whether Ray hands out GPU ids (`ray.gpu`), for the executor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from suan.catalog import Catalog
from suan.cluster.model import Node, NodeHealth
from suan.exec.nodes import catalog_type, engine_node

ACCEL_PREFIX = "accel:"
RAY_TYPE_PREFIX = "accelerator_type:"
DEATH_REASONS = {
    0: "unspecified",
    1: "unexpected termination",
    2: "expected termination",
    3: "autoscaler drain (idle)",
    4: "autoscaler drain (preempted)",
}


@dataclass(frozen=True)
class RayInventoryRules:
    """How to read Ray's nodes: the label naming a node, the label of each topology tier, and
    the type a bare `GPU` resource means when Ray does not say (None: such nodes are cordoned)."""

    node_label: str = "suan/node"
    topology_labels: Mapping[str, str] = field(
        default_factory=lambda: {
            "zone": "suan/zone",
            "block": "suan/block",
            "rack": "suan/rack",
            "supernode": "suan/supernode",
        }
    )
    default_type: str | None = None


def node_name(record: Mapping[str, Any], rules: RayInventoryRules) -> str:
    labels = record.get("Labels") or {}
    return str(labels.get(rules.node_label) or record.get("NodeManagerHostname") or "")


def _devices(
    resources: Mapping[str, float], rules: RayInventoryRules
) -> tuple[str | None, str, int]:
    """(type name as Ray spells it, the resource key holding the count, count)."""
    for key, value in resources.items():
        if key.startswith(ACCEL_PREFIX) and value >= 1:
            return key[len(ACCEL_PREFIX) :], key, int(value)
    gpus = int(resources.get("GPU", 0))
    if gpus:
        named = [k[len(RAY_TYPE_PREFIX) :] for k in resources if k.startswith(RAY_TYPE_PREFIX)]
        return (named[0] if named else rules.default_type), "GPU", gpus
    return None, "", 0


def death_reason(record: Mapping[str, Any]) -> str:
    """Ray's own words on why a node died."""
    code = record.get("DeathReason")
    why = DEATH_REASONS.get(code, str(code)) if isinstance(code, int) else str(code or "")
    message = str(record.get("DeathReasonMessage") or "").strip()
    return "ray: node dead" + (f" ({why})" if why else "") + (f": {message}" if message else "")


def ray_node(record: Mapping[str, Any], rules: RayInventoryRules, catalog: Catalog) -> Node:
    """One `ray.nodes()` record as a scheduler Node (see the module docstring)."""
    resources = record.get("Resources") or {}
    labels_in = record.get("Labels") or {}
    health, reason = NodeHealth.READY, ""
    if not record.get("Alive"):
        health, reason = NodeHealth.DOWN, death_reason(record)
    type_name, key, count = _devices(resources, rules)
    labels = {
        "engine": "ray",
        "ray.node_id": str(record.get("NodeID") or ""),
        "address": str(record.get("NodeManagerAddress") or ""),
    }
    accelerator = None
    if count:
        accelerator, problem = catalog_type(type_name, catalog, "ray", "accelerator type")
        if problem and health == NodeHealth.READY:
            health, reason = NodeHealth.CORDONED, problem
        if accelerator:
            labels["ray.resource"] = key
            labels["ray.gpu"] = "1" if resources.get("GPU", 0) >= count else "0"
    return engine_node(
        node_name(record, rules),
        accelerator,
        count,
        catalog,
        tiers={tier: str(labels_in.get(key, "")) for tier, key in rules.topology_labels.items()},
        labels=labels,
        health=health,
        reason=reason,
        cpu_milli=int(resources.get("CPU", 0) * 1000),
        memory_mib=int(resources.get("memory", 0)) >> 20,
    )


def ray_nodes(
    records: Iterable[Mapping[str, Any]], rules: RayInventoryRules, catalog: Catalog
) -> tuple[Node, ...]:
    """One Node per name, the alive record first (see the module docstring), sorted by name."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for record in records:
        name = node_name(record, rules)
        if name and (name not in chosen or (record.get("Alive") and not chosen[name]["Alive"])):
            chosen[name] = record
    return tuple(ray_node(chosen[name], rules, catalog) for name in sorted(chosen))
