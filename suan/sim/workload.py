"""A job as a trace records it, before the simulator turns it into a scheduler `Job`.

`duration_s` is the run time on the reference accelerator (the catalog's V100-16GB unless the
runtime model says otherwise) with the requested GPUs; `durations` optionally gives the
exclusive run time per accelerator type (Gavel's throughput table), which then wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TraceJob:
    """One job of a trace. Times in seconds from the trace start."""

    job_id: str
    submit_time: float
    duration_s: float
    num_gpus: int
    gpu_type: str | None = None
    user: str = ""
    queue: str = "default"
    priority: int = 0
    durations: Mapping[str, float] = field(default_factory=dict, hash=False, compare=False)

    @property
    def gpu_seconds(self) -> float:
        return self.duration_s * self.num_gpus


def replica_shape(num_gpus: int, node_devices: int) -> tuple[int, int]:
    """(replicas, devices per replica) for a gang of `num_gpus` on nodes of `node_devices`.

    A job that fits on one node is one replica; a larger one is split into the largest equal
    replicas that divide both its size and the node size (16 on 8-GPU nodes: 2x8; 12: 3x4),
    so that consolidated placement fills whole nodes where it can.
    """
    if num_gpus <= node_devices:
        return 1, num_gpus
    from math import gcd

    per = gcd(num_gpus, node_devices)
    return num_gpus // per, per
