"""The simulator's scheduler: one cycle per event, over a ledger kept between cycles.

The simulator books starts and finishes on the scheduler's `suan.sched.WarmLedger` as they
happen and runs each cycle through `WarmLedger.run_cycle` (the scheduler's own phases on the
kept ledger), carrying the scheduler's `CarriedState` from cycle to cycle. With `warm=False`
it calls `suan.sched.schedule()` on a fresh snapshot instead; the two give the same decisions
up to ties between equally free nodes (tests check both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from suan.catalog import Catalog
from suan.cluster.model import Cluster
from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.sched import CarriedState, Decisions, Policy, WarmLedger, schedule
from suan.sched.service import ServiceClasses


class WarmScheduler:
    """The running allocations of a simulation, the ledger that books them, and the state
    the scheduler carries between cycles."""

    def __init__(self, cluster: Cluster, queues: tuple[QueueSpec, ...], catalog: Catalog,
                 *, warm: bool = True):
        self.warm = warm
        self.booked = WarmLedger(cluster, queues, catalog)
        self.state = CarriedState()
        self.service: ServiceClasses | None = None

    @property
    def cycles(self) -> int:
        return self.state.cycles

    @property
    def live(self) -> Mapping[str, Allocation]:
        return self.booked.live

    @property
    def cluster(self) -> Cluster:
        return self.booked.cluster

    @property
    def capacity(self) -> dict[str, int]:
        return self.booked.capacity

    @property
    def free_whole_devices(self) -> int:
        return self.booked.free_whole_devices

    @property
    def preemptible_priorities(self) -> Iterable[int]:
        return self.booked.preemptible_priorities

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        return self.booked.queues

    def set_cluster(self, cluster: Cluster) -> None:
        """Use a new cluster (a node failed or came back)."""
        self.booked.set_cluster(cluster)

    def add(self, alloc: Allocation) -> None:
        """Book a started allocation."""
        self.booked.book(alloc)

    def remove(self, name: str) -> Allocation:
        """Release a finished, preempted or failed allocation."""
        return self.booked.release(name)

    def run(self, pending: Sequence[Job], policy: Policy, now: float) -> Decisions:
        """One scheduling cycle at `now`; the booked allocations are unchanged afterwards."""
        snapshot = self.booked.snapshot(now, self.service)
        if self.warm:
            decisions, self.state = self.booked.run_cycle(snapshot, pending, policy,
                                                          self.state)
        else:
            decisions, self.state = schedule(snapshot, pending, policy, self.state)
        return decisions
