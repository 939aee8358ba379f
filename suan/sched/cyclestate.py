"""The per-cycle scratchpad: everything one scheduling cycle reads and writes, typed.

In the spirit of the Kubernetes scheduling framework's CycleState, a `CycleState` lives for
one cycle only: it is made from the snapshot (or from a `suan.sched.warm.WarmLedger`), handed
to each phase of the policy in turn, and dropped once the decisions are out. What outlives a
cycle is the immutable `suan.sched.carried.CarriedState`, never this object.

The phases and plugins share it through named, typed fields:

- inputs: `snapshot`, `policy`, `pending`, `ctx` (the placement context: seeded RNG,
  pending workload);
- working state: `ledger` (free devices, CPU, memory) and `quota` (usage per queue), both
  holding the running allocations; `live` (running jobs by name, as this cycle leaves them);
- output: `decisions` (starts, preemptions, waiting verdicts, reservation);
- queue phase: `reservation` (EASY backfill's hold for the first blocked job), `blocked_by`
  (the strict head of line), `failed_shapes` (verdicts per job shape and capacity
  generation), `started_now`;
- preemption: `preemption_attempts`, `preempt_failed`, `failed_priorities`, `victim_order`,
  `victim_summary`,
  `victim_counts`, `worst_levels`, `levels` (memoised service classes);
- rank: `originals` (the caller's jobs by name, where a rank plugin gave the cycle views),
  `views` (views kept by the caller).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from suan.cluster.snapshot import Allocation, Snapshot
from suan.jobs.model import Job
from suan.sched.budget import MAX_STARTS
from suan.sched.decisions import Decisions, Start, WaitCode
from suan.sched.ledger import Ledger
from suan.sched.pending_index import PendingIndex
from suan.sched.placement import PlaceContext
from suan.sched.quota import QuotaBook
from suan.sched.service import LAS_CLASSES, ServiceClasses

if TYPE_CHECKING:
    from suan.sched.backfill import Reservation
    from suan.sched.gang import GangFit
    from suan.sched.phases import RankViews
    from suan.sched.plugins import Rank
    from suan.sched.policy import Policy

Ranked = tuple[float, int, float, float, str, Allocation]
"""A preemption candidate in victim order (see `suan.sched.preempt`)."""


@dataclass(eq=False)
class CycleState:
    """The scratchpad of one cycle (see the module docstring for who uses which field)."""

    snapshot: Snapshot
    policy: Policy
    ledger: Ledger
    quota: QuotaBook
    live: dict[str, Allocation]
    ctx: PlaceContext
    pending: Sequence[Job] | PendingIndex = ()
    """The jobs the cycle considers (a rank phase replaces them by its views): a list, or
    the index a caller keeps between cycles."""
    max_starts: int = MAX_STARTS
    """The cycle's budget of starts (`suan.sched.budget`)."""
    decisions: Decisions = field(default_factory=Decisions)
    reservation: Reservation | None = None
    blocked_by: str | None = None
    failed_shapes: dict[object, tuple[int, str, WaitCode]] = field(default_factory=dict)
    started_now: set[str] = field(default_factory=set)
    preemption_attempts: int = 0
    preempt_failed: set[tuple[object, ...]] = field(default_factory=set)
    failed_priorities: dict[tuple[object, ...], float] = field(default_factory=dict)
    """Per (shape, queue, service class, ledger generation), the highest priority of a job
    whose victim search found no victims among all its candidates (`suan.sched.preempt`)."""
    victim_order: list[Ranked] | None = None
    victim_summary: tuple[float, bool] | None = None
    victim_counts: tuple[Iterable[int], Iterable[str]] | None = None
    """Priorities and queues of the preemptible running jobs, when a caller keeps them
    (`WarmLedger`); None: read from the snapshot."""
    worst_levels: dict[tuple[str, int], int] | None = None
    levels: dict[tuple[str, float, str], int] = field(default_factory=dict)
    originals: Mapping[str, Job] | None = None
    views: RankViews | None = None
    """Rank views a caller keeps between cycles (`WarmLedger`), so that a job whose rank
    did not change is not copied again; None: made afresh."""
    unranked: tuple[RankViews, Rank] | None = None
    """Set by the rank phase of a continuous rank: the running jobs are still to be ranked,
    which `suan.sched.phases.rank_running` does when the cycle first asks about preemption."""

    @property
    def now(self) -> float:
        return self.snapshot.now

    @property
    def service(self) -> ServiceClasses:
        """The snapshot's learned service classes, or the LAS classes when it has none."""
        return self.snapshot.service or LAS_CLASSES

    def job_level(self, job: Job) -> int:
        """A waiting job's service class under the snapshot's learned classes (memoised)."""
        key = (job.queue, job.attained_service_s, job.series)
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = self.service.level(*key)
        return level

    def commit(self, job: Job, fit: GangFit, *, victims: tuple[str, ...] = ()) -> None:
        """Start `job` in this cycle: book its quota, count it live, record the start (marked
        backfilled when a reservation is held for an earlier job)."""
        for usage in fit.usage:
            self.quota.add(job.queue, usage)
        self.live[job.name] = Allocation(job, fit.replicas, start_time=self.now)
        self.started_now.add(job.name)
        self.decisions.starts.append(
            Start(job, fit.replicas, fit.why, fit.accelerators, victims,
                  self.reservation is not None)
        )
