"""A replica's processes: who starts them, and where each one's devices come from.

With `per-replica` (the default) Suan starts one process per replica; it sees all of the
replica's devices and may start more itself (`torchrun --nproc-per-node=N` reads the PET_*
variables Suan sets, so R replicas form one world of R*N ranks). With `per-device` Suan starts
one process per device of each replica (a replica without devices still gets one process).
Executors see only processes: each is a `ReplicaPlacement` of its own. A replica that spans
nodes is already one entry per node part, so each part gets its own process(es).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from suan.cluster.snapshot import ReplicaPlacement


def processes(replicas: tuple[ReplicaPlacement, ...], mode: str) -> tuple[ReplicaPlacement, ...]:
    """The processes to launch for `replicas`, in rank order."""
    if mode != "per-device":
        return replicas
    expanded: list[ReplicaPlacement] = []
    for replica in replicas:
        if not replica.devices:
            expanded.append(replica)
        expanded.extend(replace(replica, devices=(device,)) for device in replica.devices)
    return tuple(expanded)


def process_count(replicas_devices: list[int], mode: str) -> int:
    """How many processes replicas of these device counts make."""
    if mode != "per-device":
        return len(replicas_devices)
    return sum(max(1, count) for count in replicas_devices)


def with_assigned_devices(
    replicas: tuple[ReplicaPlacement, ...],
    mode: str,
    assigned: Mapping[int, tuple[int, ...]],
) -> tuple[ReplicaPlacement, ...]:
    """`replicas` with the devices an engine gave some processes (rank -> device ids)."""
    result = []
    rank = 0
    for replica in replicas:
        count = 1 if mode != "per-device" else max(1, len(replica.devices))
        parts = [assigned.get(rank + i) for i in range(count)]
        rank += count
        if mode != "per-device":
            devices = parts[0] if parts[0] is not None else replica.devices
        else:
            devices = tuple(
                device
                for i, own in enumerate(replica.devices)
                for device in (parts[i] if parts[i] is not None else (own,))
            )
        result.append(replace(replica, devices=tuple(devices)))
    return tuple(result)
