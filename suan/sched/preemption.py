"""The preemption plugin: when a blocked job may preempt, and the attempt itself.

`VictimPreemption` preempts by priority and by reclaim of borrowed quota, and, with
`by_class`, by service class inside a queue once a running job has run `class_min_run_s`
seconds (time sharing). The choice of victims is `suan.sched.preempt.try_preemption`. An
attempt is made only when a cheap test from the snapshot finds some possible victim, at most
`max_attempts` times a cycle, and never twice for jobs that would find the same victims
(same shape, queue, priority and class) while capacity has not grown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from suan.jobs.model import Job
from suan.sched.order import running_level
from suan.sched.phases import rank_running
from suan.sched.preempt import may_time_share, try_preemption

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState


@dataclass(frozen=True)
class VictimPreemption:
    """Priority, reclaim and (with `by_class`) service-class preemption."""

    by_class: bool = False
    class_min_run_s: float = 0.0
    max_attempts: int = 16
    name: str = "victims"

    def may_preempt(self, cycle: CycleState, job: Job) -> bool:
        rank_running(cycle)
        return (
            cycle.preemption_attempts < self.max_attempts
            and self._has_victims_for(cycle, job)
            and self._key(cycle, job) not in cycle.preempt_failed
        )

    def preempt_for(self, cycle: CycleState, job: Job) -> bool:
        cycle.preemption_attempts += 1
        if try_preemption(cycle, job, cycle.ctx):
            return True
        cycle.preempt_failed.add(self._key(cycle, job))
        return False

    def _key(self, cycle: CycleState, job: Job) -> tuple[object, ...]:
        """Jobs with equal keys find the same victims: a failed attempt holds for all of them
        until capacity next grows (victims only leave within a cycle)."""
        level = cycle.job_level(job) if self.by_class else 0
        return (job.shape_id, job.queue, job.priority, level, cycle.ledger.generation)

    def _has_victims_for(self, cycle: CycleState, job: Job) -> bool:
        """Cheap test (from the snapshot) that some running job could be a victim."""
        lowest_priority, borrowers = victim_summary(cycle)
        if job.priority > lowest_priority:
            return True
        spec = cycle.quota.specs.get(job.queue)
        if borrowers and spec is not None and not spec.unlimited:
            return True
        return self.by_class and _worst_level(cycle, job) > cycle.job_level(job)


def victim_summary(cycle: CycleState) -> tuple[float, bool]:
    """(lowest priority among preemptible running jobs, whether any of their queues
    borrows), computed once per cycle when a job first blocks: from the caller's counts
    when it keeps them (`cycle.victim_counts`), else from the snapshot."""
    if cycle.victim_summary is None:
        if cycle.victim_counts is not None:
            priorities, queues = cycle.victim_counts
        else:
            victims = [a.job for a in cycle.snapshot.running if a.job.preemptible]
            priorities, queues = (j.priority for j in victims), {j.queue for j in victims}
        cycle.victim_summary = (
            min(priorities, default=float("inf")),
            any(cycle.quota.borrowing(q) for q in queues),
        )
    return cycle.victim_summary


def _worst_level(cycle: CycleState, job: Job) -> int:
    """The worst service class among preemptible running jobs of `job`'s queue and
    priority that have run long enough to be time-shared (computed once per cycle)."""
    if cycle.worst_levels is None:
        service, now = cycle.service, cycle.now
        worst: dict[tuple[str, int], int] = {}
        for alloc in cycle.snapshot.running:
            if alloc.job.preemptible and may_time_share(cycle, alloc):
                key = (alloc.job.queue, alloc.job.priority)
                level = running_level(service, alloc, now)
                worst[key] = max(worst.get(key, level), level)
        cycle.worst_levels = worst
    return cycle.worst_levels.get((job.queue, job.priority), -1)
