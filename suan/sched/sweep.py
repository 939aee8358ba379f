"""A cycle's walk over the pending classes, in the policy's order, judging one job per class
where judging each would give every member the same verdict.

It makes the decisions of the plain walk (every pending job in `suan.sched.order.ordered`
order: its remembered verdict if `Cycle.remembered` has one, else `Cycle.consider`), at a cost
that grows with classes and starts instead of pending jobs:

- Jobs come from class heads (`suan.sched.pending_index`), merged by the order key inside
  each queue; with fair share, queues take turns exactly as in `interleave_fair_share`.
- When a head gets a remembered verdict (a shape that already failed, a blocked head of line)
  every later member of its class would get it too, for as long as nothing that verdict
  reads changes: the class is set aside with that verdict. What it reads changes only when a
  considered job raises the ledger's generation (a committed preemption), blocks the head of
  line, or rewrites the remembered verdict of the class's shape. Then the classes set aside
  are revived: their members that the plain walk would already have passed (order key up to
  the last job taken from their queue) keep the verdict, the rest go back into the walk.
- A queue whose walk is left with only classes set aside is done: in the plain walk it would
  have passed all of them in its turn, with no start in between.
- The budget (`suan.sched.budget`): once the cycle has made `max_starts` starts, no job is
  considered any more; a job with a remembered verdict still gets it, every other gets
  `WaitCode.DEFERRED`, a class at a time.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from suan.jobs.model import Job
from suan.sched.decisions import Pending, WaitCode
from suan.sched.order import SortKey, ordered, plain_key
from suan.sched.pending_index import JobClass

if TYPE_CHECKING:
    from suan.sched.cycle import Cycle

Judge = Callable[[Job], Pending | None]


@dataclass(slots=True)
class Run:
    """One class during one cycle: members[pos:end] are still to be walked."""

    members: list[Job]
    pos: int
    end: int
    shape: int
    seq: int


@dataclass(slots=True)
class QueueWalk:
    """One queue of one priority band (or, without fair share, every pending job)."""

    live: list[tuple[SortKey, int, Run]] = field(default_factory=list)
    aside: dict[int, list[tuple[Run, Pending]]] = field(default_factory=dict)
    """Classes set aside, by shape, with the verdict their head got."""
    cursor: SortKey | None = None
    """Order key of the last job taken from this queue."""


CLASS_WALK_FROM = 1_000
"""Plain lists this long or longer are filed in classes and walked class by class; shorter
ones job by job. Only speed depends on it (both walks decide alike): filing classes costs
about what setting classes aside saves below a few thousand jobs (on the job mix of
`bench/scheduler_scale.py` at 500 nodes the two cost the same at 1,000 waiting jobs and the
class walk is 9 % faster at 3,000), and the queues of a replay are mostly far shorter."""


def walk_jobs(cycle: Cycle, jobs: Sequence[Job], max_starts: int, remembered: Judge,
              consider: Judge) -> None:
    """The per-job walk the class walk is equal to: every job in `ordered` order, given its
    remembered verdict, else (while fewer than `max_starts` starts) considered, else
    deferred. Cheaper than `Sweep` for short queues (see `CLASS_WALK_FROM`)."""
    policy, decisions = cycle.policy, cycle.decisions
    waiting = decisions.pending
    for job in ordered(jobs, policy.order, cycle.quota, policy.fair_share,
                       cycle.snapshot.service):
        verdict = remembered(job)
        if verdict is None and len(decisions.starts) >= max_starts:
            verdict = Pending(job.name, deferred_reason(max_starts), WaitCode.DEFERRED)
            decisions.deferred += 1
        elif verdict is None:
            verdict = consider(job)
        if verdict is not None:
            waiting.append(verdict)


def deferred_reason(max_starts: int) -> str:
    return (f"not considered in this cycle: it reached its budget of {max_starts} starts on "
            "jobs ahead of this one; the next cycle, run at once, considers it")


class Sweep:
    """The walk of one cycle (see the module doc). `run()` once."""

    def __init__(self, cycle: Cycle, classes: list[JobClass], max_starts: int,
                 remembered: Judge, consider: Judge):
        """`remembered(job)`: the cycle's remembered verdict for `job`, or None;
        `consider(job)`: place it (None) or say why it waits. The walk also reads the
        cycle's policy, quota, snapshot, decisions, ledger generation, strict head of line
        and remembered verdicts by shape."""
        self.cycle = cycle
        self.remembered = remembered
        self.consider = consider
        self.max_starts = max_starts
        self.waiting = cycle.decisions.pending
        heads = [c.members[c.head] for c in classes]
        self.key: Callable[[Job], SortKey] = plain_key(
            heads, cycle.policy.order, cycle.snapshot.service)
        self.bands: list[dict[str, QueueWalk]] = self._bands(classes, heads)
        self.band: dict[str, QueueWalk] = {}
        self.spent = False

    def _bands(self, classes: list[JobClass], heads: list[Job]) -> list[dict[str, QueueWalk]]:
        """Queue walks per priority band, highest first (one walk without fair share)."""
        fair = self.cycle.policy.fair_share
        bands: dict[int, dict[str, QueueWalk]] = {}
        key = self.key
        for seq, (job_class, head) in enumerate(zip(classes, heads, strict=True)):
            walks = bands.setdefault(head.priority if fair else 0, {})
            walk = walks.get(head.queue if fair else "")
            if walk is None:
                walk = walks[head.queue if fair else ""] = QueueWalk()
            run = Run(job_class.members, job_class.head, len(job_class.members),
                      head.shape_id, seq)
            walk.live.append((key(head), seq, run))
        for walks in bands.values():
            for walk in walks.values():
                heapq.heapify(walk.live)
        return [bands[priority] for priority in sorted(bands, reverse=True)]

    # ------------------------------------------------------------------ driver
    def run(self) -> None:
        fair = self.cycle.policy.fair_share
        for band in self.bands:
            self.band = band
            if fair:
                self._interleave(band)
            else:
                for walk in band.values():
                    self._turn(walk, None)
                    self._finish(walk)
            if self.spent:
                break
        if self.spent:
            for band in self.bands:
                for walk in band.values():
                    self._finish(walk)

    def _interleave(self, band: dict[str, QueueWalk]) -> None:
        """Queues take turns by lowest dominant share, as `interleave_fair_share` does."""
        quota = self.cycle.quota
        heap = [(quota.dominant_share(queue), queue) for queue in band]
        heapq.heapify(heap)
        while heap and not self.spent:
            share, queue = heapq.heappop(heap)
            walk = band[queue]
            share = self._turn(walk, (heap, queue, share))
            if walk.live and not self.spent:
                heapq.heappush(heap, (share, queue))
            else:
                self._finish(walk)

    def _turn(self, walk: QueueWalk, turn: tuple[list[tuple[float, str]], str, float] | None
              ) -> float:
        """Walk `walk` until it is empty, the budget is spent, or (fair share) a start lifts
        its queue's share above the next queue's. Returns the queue's share."""
        cycle = self.cycle
        quota = cycle.quota
        seen = quota.version
        share = turn[2] if turn is not None else 0.0
        while walk.live:
            head_key, _, run = walk.live[0]
            job = run.members[run.pos]
            walk.cursor = head_key
            verdict = self.remembered(job)
            if verdict is not None:
                heapq.heappop(walk.live)
                walk.aside.setdefault(run.shape, []).append((run, verdict))
                continue
            if len(cycle.decisions.starts) >= self.max_starts:
                self.spent = True
                return share
            self._consider(job, run, walk)
            if turn is None or quota.version == seen:
                continue
            seen = quota.version
            heap, queue, _ = turn
            share = quota.dominant_share(queue)
            if heap and (share, queue) > heap[0]:
                break
        return share

    def _consider(self, job: Job, run: Run, walk: QueueWalk) -> None:
        """Consider the head `job` of `run`, advance the run, and revive classes set aside
        when the verdicts they hold may have changed."""
        cycle = self.cycle
        memo = cycle.failed_shapes
        shape = job.shape_id
        before = (cycle.ledger.generation, cycle.blocked_by,
                  memo.get(shape), memo.get((job.queue, shape)))
        verdict = self.consider(job)
        if verdict is not None:
            self.waiting.append(verdict)
        run.pos += 1
        if run.pos < run.end:
            heapq.heapreplace(walk.live, (self.key(run.members[run.pos]), run.seq, run))
        else:
            heapq.heappop(walk.live)
        if before[0] != cycle.ledger.generation or before[1] != cycle.blocked_by:
            self._revive(None)
        elif before[2] is not memo.get(shape) or before[3] is not memo.get((job.queue, shape)):
            self._revive(shape)

    def _revive(self, shape: int | None) -> None:
        """Put back into their walks the members of classes set aside (of `shape`, or all)
        that the plain walk has not passed yet; those it has passed keep their verdict."""
        key = self.key
        for walk in self.band.values():
            if not walk.aside:
                continue
            if shape is None:
                revived = [entry for entries in walk.aside.values() for entry in entries]
                walk.aside = {}
            else:
                revived = walk.aside.pop(shape, [])
            for run, verdict in revived:
                cut = run.end if walk.cursor is None else bisect_right(
                    run.members, walk.cursor, lo=run.pos, hi=run.end, key=key)
                self.waiting.add_group(run.members, run.pos, cut, verdict.reason, verdict.code)
                run.pos = cut
                if cut < run.end:
                    heapq.heappush(walk.live, (key(run.members[cut]), run.seq, run))

    def _finish(self, walk: QueueWalk) -> None:
        """Record the verdicts of a walk that takes no more jobs: classes set aside keep
        theirs; with the budget spent, each live class gets its head's remembered verdict
        or `deferred`."""
        add_group = self.waiting.add_group
        for entries in walk.aside.values():
            for run, verdict in entries:
                add_group(run.members, run.pos, run.end, verdict.reason, verdict.code)
        walk.aside = {}
        if not walk.live:
            return
        reason = deferred_reason(self.max_starts)
        cycle = self.cycle
        for _, _, run in walk.live:
            verdict = self.remembered(run.members[run.pos])
            if verdict is None:
                add_group(run.members, run.pos, run.end, reason, WaitCode.DEFERRED)
                cycle.decisions.deferred += run.end - run.pos
            else:
                add_group(run.members, run.pos, run.end, verdict.reason, verdict.code)
        walk.live = []
