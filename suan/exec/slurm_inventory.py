"""Slurm's nodes as scheduler `Node`s: GRES through the catalog, features as topology, health.

    nodes = slurm_nodes(json.loads(sinfo_json_text), SlurmInventoryRules(...), catalog)

- GRES `gpu:h100:8` maps the type (`h100`) through the catalog; an untyped `gpu:8` takes the
  configured default type. Several GRES types may appear across a cluster; a node whose GRES
  type the catalog cannot map is reported with no accelerator and cordoned, with a reason that
  names the type.
- Topology comes from node features: a feature that starts with a tier's prefix (`rack_r1`
  with prefix `rack_`) gives that tier's label (`r1`).
- Health: `down`, `fail`, `unknown` and not-responding nodes are `down`; drained, draining,
  failing and maintenance nodes are `cordoned`; others are `ready`. `Node.health_reason`
  quotes Slurm's state and its reason ("drained: ECC errors"). A node drained by
  `suan devices check --slurm-drain` (reason `suan: drain: ...`) is labelled `device-health`
  with that severity, so a `drain` verdict drains it in Suan too (suan.control.inventory).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from suan.catalog import Catalog
from suan.cluster.model import Node, NodeHealth
from suan.devices.slurm_drain import severity_in_reason
from suan.devices.watch import HEALTH_LABEL
from suan.exec.nodes import catalog_type, engine_node

_GRES = re.compile(r"^(?P<name>[^:()]+)(?::(?P<type>[^:()]+))?:(?P<count>\d+)")
DOWN_STATES = {"down", "fail", "unknown", "future", "power_down", "powered_down"}
DOWN_FLAGS = {"NOT_RESPONDING", "POWERED_DOWN", "POWER_DOWN"}
CORDON_STATES = {"drained", "draining", "maint", "failing"}
CORDON_FLAGS = {"DRAIN", "DRAINED", "DRAINING", "MAINTENANCE", "FAIL", "REBOOT_REQUESTED"}


@dataclass(frozen=True)
class SlurmInventoryRules:
    """How to read Slurm's nodes: the GRES name of accelerators, the type an untyped GRES
    means, the feature prefix of each topology tier, and the partition Suan owns (None: all)."""

    gres_name: str = "gpu"
    default_type: str | None = None
    topology_prefixes: Mapping[str, str] = field(
        default_factory=lambda: {
            "zone": "zone_",
            "block": "block_",
            "rack": "rack_",
            "supernode": "nvl_",
        }
    )
    partition: str | None = None


@dataclass(frozen=True)
class GresEntry:
    """One item of a node's GRES string: `gpu:h100:8` -> ("gpu", "h100", 8)."""

    name: str
    type: str | None
    count: int

    @property
    def request(self) -> str:
        """The `--gres` prefix to ask for devices of this entry (`gpu:h100`)."""
        return f"{self.name}:{self.type}" if self.type else self.name


def parse_gres(text: str | None) -> list[GresEntry]:
    """The entries of a GRES string (`gpu:h100:4(S:0),gpu:a100:4`); `(null)`/empty -> []."""
    entries = []
    for item in re.split(r",(?![^(]*\))", text or ""):
        match = _GRES.match(item.strip())
        if match:
            entries.append(GresEntry(match["name"], match["type"], int(match["count"])))
    return entries


def _state_words(record: Mapping[str, Any]) -> tuple[str, set[str]]:
    state = record.get("state", "")
    if isinstance(state, list):  # newer Slurm: a list of words
        words = [str(word).lower() for word in state]
        state, extra = (words[0] if words else ""), {w.upper() for w in words[1:]}
    else:
        state, extra = str(state).lower(), set()
    return state, extra | {str(flag).upper() for flag in record.get("state_flags") or []}


def node_health(record: Mapping[str, Any]) -> tuple[NodeHealth, str]:
    """Health and the engine's reason for one `sinfo --json` node record."""
    state, flags = _state_words(record)
    described = "+".join([state, *sorted(flag.lower() for flag in flags)])
    reason = str(record.get("reason") or "").strip()
    quoted = f"slurm: {described}" + (f": {reason}" if reason else "")
    if state in DOWN_STATES or flags & DOWN_FLAGS:
        return NodeHealth.DOWN, quoted
    if state in CORDON_STATES or flags & CORDON_FLAGS:
        return NodeHealth.CORDONED, quoted
    return NodeHealth.READY, ""


def _topology(features: str, prefixes: Mapping[str, str]) -> dict[str, str]:
    tiers: dict[str, str] = {}
    for feature in (f.strip() for f in features.split(",")):
        for tier, prefix in prefixes.items():
            if prefix and feature.startswith(prefix) and len(feature) > len(prefix):
                tiers.setdefault(tier, feature[len(prefix) :])
    return tiers


def slurm_node(record: Mapping[str, Any], rules: SlurmInventoryRules, catalog: Catalog) -> Node:
    """One `sinfo --json` node record as a scheduler Node (see the module docstring)."""
    health, reason = node_health(record)
    gres = [g for g in parse_gres(record.get("gres")) if g.name == rules.gres_name]
    entry = max(gres, key=lambda g: g.count) if gres else None
    accelerator, labels = None, {"engine": "slurm"}
    if entry is not None:
        labels["slurm.gres"] = entry.request
        accelerator, problem = catalog_type(
            entry.type or rules.default_type, catalog, "slurm", "GRES type"
        )
        if problem:
            health, reason = NodeHealth.CORDONED, problem
    device_severity = severity_in_reason(str(record.get("reason") or ""))
    if health is NodeHealth.CORDONED and device_severity is not None:
        labels[HEALTH_LABEL] = str(device_severity)
    features = str(record.get("active_features") or record.get("features") or "")
    labels["address"] = str(record.get("address") or record.get("hostname") or "")
    return engine_node(
        str(record["name"]),
        accelerator,
        entry.count if entry else 0,
        catalog,
        tiers=_topology(features, rules.topology_prefixes),
        labels=labels,
        health=health,
        reason=reason,
        cpu_milli=int(record.get("cpus") or 0) * 1000,
        memory_mib=int(record.get("real_memory") or 0),
    )


def slurm_nodes(
    document: Mapping[str, Any], rules: SlurmInventoryRules, catalog: Catalog
) -> tuple[Node, ...]:
    """Every node of `sinfo --json` in Suan's partition (all nodes when none is set)."""
    records = document.get("nodes") or []
    if rules.partition:
        records = [r for r in records if rules.partition in (r.get("partitions") or [])]
    return tuple(slurm_node(record, rules, catalog) for record in records)
