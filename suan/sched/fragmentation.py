"""Fragmentation of a node against a workload, after FGD (Weng et al., USENIX ATC'23).

A node's fragmentation for one task shape is the accelerator capacity on it that such a task
could not use: everything free when the task does not fit at all (too few devices, CPU or
memory), else the free shares of partially used devices that are too small for it. The node's
fragmentation against a workload is the popularity-weighted sum over task shapes. FGD places a
task on the node where that sum grows least.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suan.sched.fit import WHOLE

if TYPE_CHECKING:
    from suan.sched.ledger import Ledger
    from suan.sched.placement import ReplicaAsk


@dataclass(frozen=True)
class TaskShape:
    """One kind of task: devices, share of each (milli), CPU (milli) and its popularity."""

    devices: int
    milli: int
    cpu: int
    weight: float


def node_fragmentation(free: Sequence[int], cpu_free: int, shapes: Sequence[TaskShape]) -> float:
    """Expected unusable device capacity (in milli) on a node for the given task shapes."""
    total_free = sum(free)
    whole = sum(1 for share in free if share == WHOLE)
    partial = total_free - whole * WHOLE
    result = 0.0
    for shape in shapes:
        if shape.devices == 0:
            continue
        if shape.cpu > cpu_free:
            result += shape.weight * total_free
        elif shape.milli < WHOLE:
            result += shape.weight * sum(share for share in free if share < shape.milli)
        elif whole >= shape.devices:
            result += shape.weight * partial
        else:
            result += shape.weight * total_free
    return result


def fragmentation_delta(
    ledger: Ledger, position: int, ask: ReplicaAsk, shapes: Sequence[TaskShape]
) -> float | None:
    """How much placing one replica of `ask` on the node raises its fragmentation; None if
    it does not fit."""
    from suan.sched.placement import put_replica

    before = node_fragmentation(ledger.free[position], ledger.cpu[position], shapes)
    mark = ledger.savepoint()
    devices = put_replica(ledger, position, ask)
    if devices is None:
        return None
    after = node_fragmentation(ledger.free[position], ledger.cpu[position], shapes)
    ledger.rollback(mark)
    return after - before


def workload_shapes(asks: Sequence[tuple[int, int, int]], limit: int = 12) -> list[TaskShape]:
    """The most common (devices, milli, cpu) shapes among `asks`, weighted by frequency."""
    counts: dict[tuple[int, int, int], int] = {}
    for ask in asks:
        counts[ask] = counts.get(ask, 0) + 1
    common = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    total = sum(count for _, count in common) or 1
    return [TaskShape(d, m, c, count / total) for (d, m, c), count in common]
