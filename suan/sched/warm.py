"""A working ledger kept between cycles, for callers that run many cycles over one cluster.

`schedule()` rebuilds its working state — the `Ledger` of free devices and the quota book —
from the snapshot on every call, which costs O(nodes + running jobs) (about 8 ms for 250
nodes and 300 running jobs). A simulator that runs one cycle per event instead keeps a
`WarmLedger`: it `book`s each start and `release`s each finish, preemption or failure as they
happen, and `run_cycle` runs the scheduler's phases on that ledger inside a savepoint that is
rolled back afterwards, so the booked state is the same before and after a cycle. Ordering,
admission, placement, gang reserve, preemption, backfill and rebalancing are the same code as
`schedule()`'s, and the decisions equal a fresh cycle's on the same snapshot, except that a
kept ledger may list equally free nodes in another order (a tie may go to another node).

The ledger is a cache of what the snapshot says: it must hold exactly `snapshot.running` of
the snapshot each cycle is given (`snapshot(now)` builds that snapshot). The state carried
between cycles is the same `CarriedState` as `schedule()`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from suan.catalog import Catalog
from suan.cluster.model import Cluster
from suan.cluster.snapshot import Allocation, Snapshot
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.sched.carried import CarriedState
from suan.sched.cycle import WorkingState, new_cycle, run_phases
from suan.sched.decisions import Decisions
from suan.sched.ledger import Ledger
from suan.sched.phases import RankViews
from suan.sched.policy import Policy, get_policy
from suan.sched.quota import QuotaBook
from suan.sched.service import ServiceClasses
from suan.sched.usage import allocation_usage


class WarmLedger:
    """The running allocations of a cluster and the ledger and quota book that hold them."""

    def __init__(self, cluster: Cluster, queues: tuple[QueueSpec, ...], catalog: Catalog):
        self.catalog = catalog
        self.queues = queues
        self._live: dict[str, Allocation] = {}
        self._priorities: Counter[int] = Counter()
        self._queues: Counter[str] = Counter()
        self._views = RankViews(booked=True)
        self.set_cluster(cluster)

    @property
    def live(self) -> Mapping[str, Allocation]:
        """The booked allocations by job name (read-only)."""
        return self._live

    def set_cluster(self, cluster: Cluster) -> None:
        """Use a new cluster (a node failed or came back): rebuild the ledger and usage."""
        self.cluster = cluster
        self.capacity = cluster.capacity()
        self._ledger = Ledger(Snapshot(cluster, tuple(self._live.values()), self.queues,
                                       catalog=self.catalog), self.catalog)
        self._quota = QuotaBook(self.queues, self.capacity)
        self._priorities.clear()
        self._queues.clear()
        for alloc in self._live.values():
            self._count(alloc, 1.0)

    @property
    def free_whole_devices(self) -> int:
        """Whole devices free on the nodes a job may be placed on (degraded ones included), of
        every type, between cycles: a job that needs more cannot start without preempting."""
        return sum(self._ledger.type_whole.values())

    @property
    def preemptible_priorities(self) -> Iterable[int]:
        """The priorities of the booked preemptible jobs (each once)."""
        return self._priorities.keys()

    def snapshot(self, now: float, service: ServiceClasses | None = None) -> Snapshot:
        """The snapshot of the booked allocations at `now`."""
        return Snapshot(self.cluster, tuple(self._live.values()), self.queues, now,
                        service=service, catalog=self.catalog)

    def book(self, alloc: Allocation) -> None:
        """Book a started allocation."""
        self._live[alloc.job.name] = alloc
        self._ledger.apply_allocation(alloc)
        self._ledger.commit()
        self._count(alloc, 1.0)
        self._views.note(alloc.job.name)

    def release(self, name: str) -> Allocation:
        """Release a finished, preempted or failed allocation; return it."""
        alloc = self._live.pop(name)
        self._ledger.release_allocation(alloc)
        self._ledger.commit()
        self._count(alloc, -1.0)
        self._views.note(name)
        return alloc

    def run_cycle(self, snapshot: Snapshot, pending: Sequence[Job], policy: Policy | str,
                  state: CarriedState | None = None) -> tuple[Decisions, CarriedState]:
        """`schedule(snapshot, pending, policy, state)` on the kept ledger; `snapshot` must
        hold exactly the booked allocations (use `snapshot(now)`). The booked state is
        unchanged afterwards."""
        if len(snapshot.running) != len(self._live):
            raise ValueError("the snapshot must hold exactly the booked allocations")
        chosen = get_policy(policy) if isinstance(policy, str) else policy
        live = self._live
        waiting = [job for job in pending if job.name not in live]
        mark = self._ledger.savepoint()
        self._quota.begin()
        try:
            cycle = new_cycle(snapshot, waiting, chosen, WorkingState(self._ledger, self._quota),
                              dict(live))
            cycle.victim_counts = (self._priorities, self._queues)
            cycle.views = self._views
            decisions = run_phases(cycle)
        finally:
            self._quota.rollback()
            self._ledger.rollback(mark)
        return decisions, (state or CarriedState()).after_cycle(decisions)

    def _count(self, alloc: Allocation, sign: float) -> None:
        if alloc.job.preemptible:
            _bump(self._priorities, alloc.job.priority, sign)
            _bump(self._queues, alloc.job.queue, sign)
        self._quota.add(alloc.job.queue, allocation_usage(alloc, self._ledger), sign)


def _bump(counter: Counter, key: object, sign: float) -> None:  # type: ignore[type-arg]
    counter[key] += int(sign)
    if counter[key] <= 0:
        del counter[key]
