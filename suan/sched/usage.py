"""The quota resources a running allocation holds."""

from __future__ import annotations

from suan.cluster.snapshot import Allocation
from suan.sched.ledger import Ledger
from suan.sched.quota import request_vector


def allocation_usage(alloc: Allocation, ledger: Ledger) -> dict[str, float]:
    """Quota resources a running allocation holds (devices per accelerator type)."""
    per_type: dict[str, float] = {}
    index, nodes = ledger.index, ledger.nodes
    for replica in alloc.replicas:
        position = index.get(replica.node)
        if position is None:
            continue
        accelerator = nodes[position].accelerator
        if accelerator is not None:
            share = len(replica.devices) * replica.milli / 1000
            per_type[accelerator] = per_type.get(accelerator, 0.0) + share
    usage: dict[str, float] = {}
    for accelerator, amount in per_type.items():
        for resource, value in request_vector(accelerator, amount).items():
            usage[resource] = usage.get(resource, 0.0) + value
    return usage
