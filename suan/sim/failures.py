"""Node and device failures: exponential times between failures (MTBF) and a fixed repair time.

Published rates (see docs/simulator.md): Meta's RSC clusters saw 2.34 to 6.50 failures per
1,000 node-days (Kokolis et al., arXiv 2410.21680), i.e. a node MTBF of 154 to 427 days; the
default below, 5 per 1,000 node-days (200 days), is the rate used in that paper's model. A
failed node (or device) takes no work until it is repaired; the jobs on it lose the work since
their last checkpoint and wait to be placed again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from suan.cluster.model import Cluster, Node, NodeHealth

DAY = 86_400.0
DEFAULT_NODE_MTBF_S = 200 * DAY
DEFAULT_REPAIR_S = 4 * 3_600.0
DEVICE_SEP = "#"


@dataclass(frozen=True)
class FailureModel:
    """Per-node (and optionally per-device) MTBF in seconds, repair time, and the RNG seed."""

    node_mtbf_s: float | None = DEFAULT_NODE_MTBF_S
    device_mtbf_s: float | None = None
    repair_s: float = DEFAULT_REPAIR_S
    seed: int = 0

    def rng(self) -> random.Random:
        return random.Random(f"failures:{self.seed}")

    def job_mtbf_s(self, nodes: int, devices: int) -> float:
        """Mean time between interruptions of a job on `nodes` nodes and `devices` devices
        (any of them failing stops it); the default node MTBF where this model has none."""
        rate = 0.0
        if self.node_mtbf_s:
            rate += nodes / self.node_mtbf_s
        if self.device_mtbf_s:
            rate += devices / self.device_mtbf_s
        return 1.0 / rate if rate > 0 else DEFAULT_NODE_MTBF_S / max(1, nodes)

    def subjects(self, cluster: Cluster) -> list[tuple[str, float]]:
        """Everything that can fail, with its MTBF: nodes, then `node#device` devices."""
        found: list[tuple[str, float]] = []
        for node in cluster.nodes:
            if node.accelerator is None:
                continue
            if self.node_mtbf_s:
                found.append((node.name, self.node_mtbf_s))
            if self.device_mtbf_s:
                found.extend((f"{node.name}{DEVICE_SEP}{d}", self.device_mtbf_s)
                             for d in range(node.devices))
        return found


def parse_subject(subject: str) -> tuple[str, int | None]:
    """(node name, device id or None) of a failure subject."""
    node, sep, device = subject.partition(DEVICE_SEP)
    return node, (int(device) if sep else None)


def with_failure(cluster: Cluster, subject: str, failed: bool) -> Cluster:
    """The cluster with a node down (or back up), or one device unhealthy (or healthy)."""
    name, device = parse_subject(subject)
    nodes = list(cluster.nodes)
    position = cluster.index[name]
    node: Node = nodes[position]
    if device is None:
        nodes[position] = replace(node, health=NodeHealth.DOWN if failed else NodeHealth.READY)
    else:
        bad = set(node.unhealthy_devices)
        (bad.add if failed else bad.discard)(device)
        nodes[position] = replace(node, unhealthy_devices=frozenset(bad))
    return Cluster(nodes, cluster.name)
