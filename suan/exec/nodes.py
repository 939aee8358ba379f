"""What every engine's inventory shares: a scheduler `Node` from what the engine reports.

    node = engine_node("n1", "H100", 8, catalog, tiers={"rack": "r1"}, labels={...})

`catalog_type` maps the engine's name for a device type through the catalog, or says why it
cannot (the node is then cordoned with that reason, naming the type).
"""

from __future__ import annotations

from collections.abc import Mapping

from suan.catalog import Catalog
from suan.cluster.model import Node, NodeHealth


def catalog_type(
    type_name: str | None, catalog: Catalog, engine: str, what: str
) -> tuple[str | None, str]:
    """(canonical type, "") for a type the catalog knows, else (None, the reason)."""
    accel = catalog.find(type_name) if type_name else None
    if accel is not None:
        return accel.name, ""
    named = f"{what} {type_name!r}" if type_name else f"untyped {what}"
    return None, (
        f"{engine}: {named} is not in the accelerator catalog; add it there, "
        f"or set the {engine} engine's default type"
    )


def engine_node(
    name: str,
    accelerator: str | None,
    devices: int,
    catalog: Catalog,
    *,
    tiers: Mapping[str, str],
    labels: dict[str, str],
    health: NodeHealth = NodeHealth.READY,
    reason: str = "",
    cpu_milli: int = 0,
    memory_mib: int = 0,
) -> Node:
    """A Node of `devices` devices of `accelerator` (None: none), laid out as the catalog says,
    placed by `tiers` (zone, block, rack, supernode)."""
    count = devices if accelerator else 0
    return Node(
        name=name,
        accelerator=accelerator,
        devices=count,
        domains=catalog.get(accelerator).domain_layout(count) if accelerator else (),
        cpu_milli=cpu_milli,
        memory_mib=memory_mib,
        zone=tiers.get("zone", ""),
        block=tiers.get("block", ""),
        rack=tiers.get("rack", ""),
        supernode=tiers.get("supernode", ""),
        health=health,
        health_reason=reason,
        labels=labels,
    )
