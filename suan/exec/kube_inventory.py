"""Kubernetes Nodes as scheduler `Node`s: device-plugin resources through the catalog,
labels as topology, conditions/cordons/taints as health.

    nodes = kube_nodes(node_list["items"], KubeInventoryRules(), catalog)

- Devices: the node's `status.allocatable` of a catalog type's `kubernetes_resource`
  (`nvidia.com/gpu: "8"`). Several types share a resource (every NVIDIA GPU is
  `nvidia.com/gpu`), so the type comes from the first `type_labels` label whose value names a
  catalog type of that resource (GPU feature discovery's `nvidia.com/gpu.product:
  NVIDIA-H100-80GB-HBM3` names H100), else the only catalog type of that resource, else
  `default_type`; a node whose type cannot be told is cordoned with a reason that says so.
- Topology: each tier's value is the first of its label keys the node carries
  (`topology.kubernetes.io/zone` for zone, `nvidia.com/gpu.clique` for supernode, ...).
- Health: Ready condition not True -> down, quoting the condition's reason and message;
  `spec.unschedulable` (kubectl cordon) -> cordoned; a NoSchedule/NoExecute taint whose key
  is not tolerated -> cordoned, quoting the taint. The device-plugin resource names are
  always tolerated (GPU nodes are commonly tainted with them; Suan's Pods tolerate them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from suan.catalog import AcceleratorType, Catalog
from suan.cluster.model import Node, NodeHealth
from suan.exec.nodes import engine_node

DEFAULT_TYPE_LABELS = (
    "suan.io/accelerator",
    "nvidia.com/gpu.product",
    "amd.com/gpu.product-name",
    "node.kubernetes.io/instance-type",
)
DEFAULT_TOPOLOGY_LABELS: dict[str, tuple[str, ...]] = {
    "zone": ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"),
    "block": ("suan.io/block",),
    "rack": ("suan.io/rack",),
    "supernode": ("nvidia.com/gpu.clique", "suan.io/supernode"),
}
_VENDOR_WORDS = {"nvidia", "tesla", "amd", "instinct", "huawei", "cambricon"}


@dataclass(frozen=True)
class KubeInventoryRules:
    """How to read a cluster's Nodes (see the module docstring)."""

    type_labels: tuple[str, ...] = DEFAULT_TYPE_LABELS
    default_type: str | None = None
    topology_labels: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_TOPOLOGY_LABELS)
    )
    tolerated_taints: tuple[str, ...] = ()


def parse_quantity(text: Any) -> float:
    """A Kubernetes quantity (`16`, `15500m`, `64Gi`, `16367668Ki`, `1e3`) as a number."""
    from kubernetes.utils import parse_quantity as parse  # the optional `kubernetes` extra

    try:
        return float(parse(str(text)))
    except (ValueError, TypeError, ArithmeticError):
        return 0.0


def match_product(value: str, resource: str, catalog: Catalog) -> AcceleratorType | None:
    """The catalog type a product label names (`NVIDIA-H100-80GB-HBM3` -> H100), if its
    device-plugin resource is `resource`: the longest leading run of words that is a name or
    alias, vendor words aside."""
    words = [w for w in re.split(r"[-_ ./]+", value) if w]
    while words and words[0].lower() in _VENDOR_WORDS:
        words = words[1:]
    for end in range(len(words), 0, -1):
        found = catalog.find("-".join(words[:end]))
        if found is not None and found.kubernetes_resource == resource:
            return found
    return None


def node_health(node: Mapping[str, Any], tolerated: Iterable[str]) -> tuple[NodeHealth, str]:
    """Health and the reason in Kubernetes' words for one Node object."""
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        if ready is None:
            return NodeHealth.DOWN, "kubernetes: NotReady: the node reports no Ready condition"
        words = (
            ": ".join(part for part in (ready.get("reason"), ready.get("message")) if part)
            or f"Ready={ready.get('status')}"
        )
        return NodeHealth.DOWN, f"kubernetes: NotReady: {words}"
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return NodeHealth.CORDONED, "kubernetes: cordoned (spec.unschedulable)"
    allowed = set(tolerated)
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and taint.get("key") not in allowed:
            value = f"={taint['value']}" if taint.get("value") else ""
            return NodeHealth.CORDONED, (
                f"kubernetes: tainted {taint.get('key')}{value}:{taint.get('effect')}"
            )
    return NodeHealth.READY, ""


def _device_resource(allocatable: Mapping[str, Any], catalog: Catalog) -> tuple[str, int] | None:
    counts = {
        accel.kubernetes_resource: int(parse_quantity(allocatable.get(accel.kubernetes_resource)))
        for accel in catalog
        if accel.kubernetes_resource and accel.kubernetes_resource in allocatable
    }
    counts = {key: count for key, count in counts.items() if count > 0}
    if not counts:
        return None
    return max(counts.items(), key=lambda item: (item[1], item[0]))


def _accelerator(
    labels: Mapping[str, str], resource: str, rules: KubeInventoryRules, catalog: Catalog
) -> AcceleratorType | str:
    """The node's type, or why it cannot be told."""
    for key in rules.type_labels:
        if labels.get(key):
            found = match_product(labels[key], resource, catalog)
            if found is not None:
                return found
    of_resource = [a for a in catalog if a.kubernetes_resource == resource]
    if len(of_resource) == 1:
        return of_resource[0]
    if rules.default_type:
        found = catalog.find(rules.default_type)
        if found is not None:
            return found
    shown = ", ".join(f"{k}={labels[k]!r}" for k in rules.type_labels if k in labels) or "none"
    return (
        f"the node advertises {resource} but no label names a catalog type "
        f"(labels read: {', '.join(rules.type_labels)}; found: {shown}); label the node "
        "suan.io/accelerator=<type>, or set the Kubernetes engine's default type"
    )


def kube_node(node: Mapping[str, Any], rules: KubeInventoryRules, catalog: Catalog) -> Node:
    """One Node object as a scheduler Node (see the module docstring)."""
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    labels = dict(meta.get("labels") or {})
    allocatable = status.get("allocatable") or {}
    resources = [a.kubernetes_resource for a in catalog if a.kubernetes_resource]
    health, reason = node_health(node, [*resources, *rules.tolerated_taints])
    accelerator, count = None, 0
    suan_labels = {"engine": "kubernetes"}
    found = _device_resource(allocatable, catalog)
    if found is not None:
        resource, devices = found
        suan_labels["kubernetes.resource"] = resource
        accel = _accelerator(labels, resource, rules, catalog)
        if isinstance(accel, str):
            if health is NodeHealth.READY:
                health, reason = NodeHealth.CORDONED, accel
        else:
            accelerator, count = accel.name, devices
    tiers = {
        tier: next((labels[key] for key in keys if labels.get(key)), "")
        for tier, keys in rules.topology_labels.items()
    }
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    suan_labels["address"] = str(addresses.get("InternalIP") or addresses.get("Hostname") or "")
    return engine_node(
        str(meta["name"]),
        accelerator,
        count,
        catalog,
        tiers=tiers,
        labels=suan_labels,
        health=health,
        reason=reason,
        cpu_milli=int(parse_quantity(allocatable.get("cpu", 0)) * 1000),
        memory_mib=int(parse_quantity(allocatable.get("memory", 0)) / (1 << 20)),
    )


def kube_nodes(
    items: Iterable[Mapping[str, Any]], rules: KubeInventoryRules, catalog: Catalog
) -> tuple[Node, ...]:
    """Every Node of a NodeList's `items`."""
    return tuple(kube_node(item, rules, catalog) for item in items)
