"""Scheduling cycles over state the simulator keeps between cycles.

`suan.sched.schedule()` rebuilds its working state (the `Ledger` of free devices and the quota
book) from the snapshot on every call, which costs O(nodes + running jobs): about 8 ms for 250
nodes and 300 running jobs. A replay of 82,000 jobs runs one cycle per arrival, so the
simulator keeps one ledger for the whole run, books starts and finishes on it as they happen,
and runs the scheduler's own `Cycle` on it inside a savepoint that it rolls back after the
cycle (the decisions are then applied as events). Ordering, admission, placement, gang
reservation, preemption and backfill are the scheduler's code, unchanged; only the
construction of the working state differs. `WarmScheduler(..., warm=False)` calls
`suan.sched.schedule()` instead, and the two give the same decisions (a test checks it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from suan.catalog import Catalog
from suan.cluster.model import Cluster
from suan.cluster.snapshot import Allocation, Snapshot
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.sched import Decisions, Policy, schedule
from suan.sched.cycle import Cycle, WorkingState, allocation_usage
from suan.sched.ledger import Ledger
from suan.sched.quota import QuotaBook
from suan.sched.service import ServiceClasses


class WarmCycle(Cycle):
    """A `Cycle` whose ledger, quota usage and live set come from a `WarmScheduler`."""

    def __init__(self, snapshot: Snapshot, policy: Policy, state: WarmScheduler):
        super().__init__(snapshot, policy, state.catalog,
                         state=WorkingState(state.ledger, state.quota), live=state.live)
        self.warm_state = state

    def _victims(self) -> tuple[float, bool]:
        """From the scheduler's counters instead of a pass over the running jobs."""
        if self.victim_summary is None:
            state = self.warm_state
            self.victim_summary = (
                min(state.victim_priorities, default=float("inf")),
                any(self.quota.borrowing(q) for q in state.victim_queues),
            )
        return self.victim_summary


class WarmScheduler:
    """The running allocations of a simulation and the ledger that books them."""

    def __init__(self, cluster: Cluster, queues: tuple[QueueSpec, ...], catalog: Catalog,
                 *, warm: bool = True):
        self.catalog = catalog
        self.queues = queues
        self.warm = warm
        self.live: dict[str, Allocation] = {}
        self.victim_priorities: Counter[int] = Counter()
        self.victim_queues: Counter[str] = Counter()
        self.cycles = 0
        self.service: ServiceClasses | None = None
        self.set_cluster(cluster)

    def set_cluster(self, cluster: Cluster) -> None:
        """Use a new cluster (a node failed or came back): rebuild the ledger and usage."""
        self.cluster = cluster
        self.capacity = cluster.capacity()
        self.ledger = Ledger(Snapshot(cluster, tuple(self.live.values()), self.queues),
                             self.catalog)
        self.quota = QuotaBook(self.queues, self.capacity)
        self.victim_priorities.clear()
        self.victim_queues.clear()
        for alloc in self.live.values():
            self._count(alloc, 1.0)

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(self.cluster, tuple(self.live.values()), self.queues, now,
                        service=self.service)

    def add(self, alloc: Allocation) -> None:
        """Book a started allocation."""
        self.live[alloc.job.name] = alloc
        self.ledger.apply_allocation(alloc)
        self._settle()
        self._count(alloc, 1.0)

    def remove(self, name: str) -> Allocation:
        """Release a finished, preempted or failed allocation."""
        alloc = self.live.pop(name)
        self.ledger.release_allocation(alloc)
        self._settle()
        self._count(alloc, -1.0)
        return alloc

    def relabel(self, alloc: Allocation) -> None:
        """Replace a running allocation's job (a new priority view); the booking stays."""
        old = self.live[alloc.job.name]
        if old.job.preemptible:
            _bump(self.victim_priorities, old.job.priority, -1)
        if alloc.job.preemptible:
            _bump(self.victim_priorities, alloc.job.priority, 1)
        self.live[alloc.job.name] = alloc

    def run(self, pending: Sequence[Job], policy: Policy, now: float) -> Decisions:
        """One scheduling cycle at `now`; the booked state is unchanged afterwards."""
        self.cycles += 1
        snapshot = self.snapshot(now)
        if not self.warm:
            return schedule(snapshot, pending, policy, self.catalog)
        mark = self.ledger.savepoint()
        try:
            running = self.live
            waiting = [job for job in pending if job.name not in running]
            self.quota.begin()
            return WarmCycle(snapshot, policy, self).run(waiting)
        finally:
            self.quota.rollback()
            self.ledger.rollback(mark)

    def _count(self, alloc: Allocation, sign: float) -> None:
        if alloc.job.preemptible:
            _bump(self.victim_priorities, alloc.job.priority, sign)
            _bump(self.victim_queues, alloc.job.queue, sign)
        self.quota.add(alloc.job.queue, allocation_usage(alloc, self.ledger), sign)

    def _settle(self) -> None:
        """Bookings outside a cycle are permanent: drop them from the undo log."""
        self.ledger.commit()


def _bump(counter: Counter, key: object, sign: float) -> None:  # type: ignore[type-arg]
    counter[key] += int(sign)
    if counter[key] <= 0:
        del counter[key]
