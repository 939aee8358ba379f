"""The immutable picture of the cluster that one scheduling cycle reads.

A `Snapshot` is built once per cycle (from the store by the control plane, from the event
state by the simulator): the nodes, the running allocations, the queue tree and the time. The
scheduler never mutates it; it derives its own working state (a `Ledger`) from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Cluster
from suan.jobs.model import Job
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec

if TYPE_CHECKING:
    from suan.sched.service import ServiceClasses


@dataclass(frozen=True)
class ReplicaPlacement:
    """Where one replica runs: group index, node name, device ids, and the share of each.

    A replica larger than one node (one that spans the nodes of a supernode) is placed as
    several parts, one `ReplicaPlacement` per node, listed one after the other in the
    domain's node order: an entry with fewer whole devices than its group asks per replica is
    such a part (`replica_parts` regroups them). Each part holds its share of the replica's
    CPU and memory (`part_share`)."""

    group: int
    node: str
    devices: tuple[int, ...]
    milli: int = 1000


def part_share(amount: int, part_devices: int, replica_devices: int) -> int:
    """A part's share of a replica's CPU or memory: `amount` in proportion to the part's
    devices, rounded up; the whole `amount` for a whole replica (or one without devices)."""
    if part_devices >= replica_devices or not amount:
        return amount
    return -(-amount * part_devices // replica_devices)


def replica_parts(
    job: Job, replicas: tuple[ReplicaPlacement, ...]
) -> list[tuple[ReplicaPlacement, ...]]:
    """`replicas` (a job's placement) grouped by replica: consecutive parts of one group whose
    devices add up to the group's count form one replica; every other entry is one alone."""
    grouped: list[tuple[ReplicaPlacement, ...]] = []
    current: list[ReplicaPlacement] = []
    held = 0
    for replica in replicas:
        want = job.groups[replica.group].accelerators
        if current and (replica.group != current[0].group or held >= want):
            grouped.append(tuple(current))
            current, held = [], 0
        current.append(replica)
        held += len(replica.devices) if replica.milli == 1000 else want
        if held >= want:
            grouped.append(tuple(current))
            current, held = [], 0
    if current:
        grouped.append(tuple(current))
    return grouped


@dataclass(frozen=True)
class Allocation:
    """A running (or just-started) job and where its replicas sit."""

    job: Job
    replicas: tuple[ReplicaPlacement, ...]
    start_time: float = 0.0
    last_checkpoint_s: float | None = None

    @property
    def nodes(self) -> list[str]:
        return list(dict.fromkeys(r.node for r in self.replicas))

    def attained_at(self, now: float) -> float:
        """Device-seconds the job has received by `now`: before this run, plus this run."""
        job = self.job
        return job.attained_service_s + job.devices * max(0.0, now - self.start_time)

    def lost_work_s(self, now: float) -> float:
        """Seconds of progress a preemption would throw away (since the last checkpoint)."""
        saved = self.last_checkpoint_s if self.last_checkpoint_s is not None else self.start_time
        interval = self.job.checkpoint_interval_s
        if interval and self.last_checkpoint_s is None:
            # Checkpoints every `interval` seconds since the start: only the tail is lost.
            return (now - self.start_time) % interval
        return max(0.0, now - max(saved, self.start_time))

    def expected_end(self) -> float | None:
        """Start time plus the user's runtime estimate, or None when there is no estimate."""
        estimate = self.job.runtime_estimate_s
        return None if estimate is None else self.start_time + estimate


@dataclass(frozen=True)
class Snapshot:
    """Cluster, running allocations, queues and the injected time of this cycle.

    `service`: the service classes learned from finished jobs (`suan.sched.service`), which
    service-class orders use; None means none learned yet (LAS classes).
    `catalog`: the accelerator catalog the cluster's types are read from (the process's
    catalog when not given, resolved when the snapshot is made, not during a cycle).
    """

    cluster: Cluster
    running: tuple[Allocation, ...] = ()
    queues: tuple[QueueSpec, ...] = (DEFAULT_QUEUE,)
    now: float = 0.0
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    service: ServiceClasses | None = field(default=None, compare=False, hash=False)
    catalog: Catalog = field(default_factory=default_catalog, compare=False, hash=False,
                             repr=False)

    @cached_property
    def queue_map(self) -> dict[str, QueueSpec]:
        return {queue.name: queue for queue in self.queues}

    @cached_property
    def running_by_name(self) -> dict[str, Allocation]:
        return {alloc.job.name: alloc for alloc in self.running}
