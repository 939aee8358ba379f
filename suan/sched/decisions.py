"""What one scheduling cycle decided: starts (with placements), preemptions, and a reason for
every job left pending. `to_dict()` is the documented JSON of `suan schedule --json`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Any, NamedTuple, overload

from suan.cluster.snapshot import ReplicaPlacement
from suan.jobs.model import Job


class WaitCode(StrEnum):
    """Why a job waits: one closed list of machine-readable codes, each beside a sentence.

    Metrics and dashboards group waiting jobs by these codes, so a code means one thing, and
    the list is documented in docs/schedule-json.md (a test keeps the two equal). The
    scheduler produces the first ten; the control plane adds the others for what happens
    around the scheduler (an engine, restarts, stops, dependencies, array throttles). Each
    member's `doc` says when it applies.
    """

    doc: str

    def __new__(cls, value: str, doc: str) -> WaitCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.doc = doc
        return member

    CAPACITY = ("capacity", "the ready nodes could hold it, but not enough of their devices "
                "of an acceptable type are free now")
    SHAPE = ("shape", "enough devices are free in total, but not in a shape the gang can "
             "use (split over nodes or link domains)")
    CONSTRAINT = ("constraint", "its topology constraint (`within: rack`, one link domain "
                  "per replica) cannot be met now; the best group is named")
    QUOTA = ("quota", "its queue would exceed its guarantee plus borrow limit, or borrow "
             "what siblings keep")
    HEALTH = ("health", "it fits the registered cluster, but not the nodes that are ready: "
              "the cordoned or down nodes (or unhealthy devices) it needs are named")
    UNSCHEDULABLE = ("unschedulable", "it can never fit the registered cluster, whatever "
                     "the nodes' health: a type the cluster lacks, a replica larger than any "
                     "node, more devices than the cluster has")
    RESERVATION = ("reservation", "it is the job the backfill reservation is for; the "
                   "reserved start time is given")
    RESERVED = ("reserved", "it would delay the backfill reservation of an earlier job")
    HEAD_OF_LINE = ("head-of-line", "a strict FIFO policy, and an earlier job is blocked")
    DEFERRED = ("deferred", "the cycle reached its budget of starts before it came to this "
                "job, which would need a placement attempt; the next cycle, run at once, "
                "considers it")
    PREEMPTING = ("preempting", "placed, and waiting for the jobs it preempted (or its own "
                  "previous place) to stop")
    PREEMPTED = ("preempted", "it was stopped for another job and waits to be placed again")
    REQUEUED = ("requeued", "its run was lost (a node or the engine went away) or requeued by "
                "a user (`suan requeue`), and it waits to be placed again, no restart counted")
    BACKOFF = ("backoff", "a rank failed; the gang restarts after its backoff delay")
    ENGINE = ("engine", "the execution engine cannot be reached, or refused the launch")
    HELD = ("held", "held back from the scheduler by a user (`suan hold`) until released")
    DEPENDENCY = ("dependency", "it waits for the jobs it depends on to start, succeed, fail "
                  "or end; they are named")
    ARRAY_LIMIT = ("array-limit", "its array already runs as many members as its throttle "
                   "(`%N`) allows")


SCHEDULER_CODES = frozenset({
    WaitCode.CAPACITY, WaitCode.SHAPE, WaitCode.CONSTRAINT, WaitCode.QUOTA, WaitCode.HEALTH,
    WaitCode.UNSCHEDULABLE, WaitCode.RESERVATION, WaitCode.RESERVED, WaitCode.HEAD_OF_LINE,
    WaitCode.DEFERRED,
})
"""The codes `schedule()` gives a pending job; the others come from the control plane."""


@dataclass(frozen=True)
class Start:
    """Start `job` with these replica placements; `why` says why this placement."""

    job: Job
    replicas: tuple[ReplicaPlacement, ...]
    why: str
    accelerators: tuple[str | None, ...] = ()
    after_preempting: tuple[str, ...] = ()
    backfilled: bool = False


@dataclass(frozen=True)
class Preemption:
    """Stop running `job` so that `for_job` can start; `reason` says why it was chosen."""

    job: str
    reason: str
    for_job: str


class Pending(NamedTuple):
    """A job that waits, with its reason. (A tuple: one is made per waiting job per cycle.)"""

    job: str
    reason: str
    code: WaitCode


class PendingGroup(NamedTuple):
    """Jobs `members[lo:hi]` (one class of alike jobs), all waiting for the same reason. The
    caller that made it never changes `members[lo:hi]` afterwards."""

    members: Sequence[Job]
    lo: int
    hi: int
    reason: str
    code: WaitCode


class WaitList(Sequence[Pending]):
    """The waiting jobs of a cycle: single `Pending` entries and `PendingGroup`s, read as one
    sequence of `Pending` (a group is expanded only when read), so that a cycle over a million
    alike waiting jobs records a few hundred groups instead of a million tuples."""

    def __init__(self, waits: Iterable[Pending] = ()):
        self._parts: list[Pending | PendingGroup] = list(waits)
        self._count = len(self._parts)

    def append(self, wait: Pending) -> None:
        self._parts.append(wait)
        self._count += 1

    def add_group(self, members: Sequence[Job], lo: int, hi: int, reason: str,
                  code: WaitCode) -> None:
        """Record that `members[lo:hi]` wait for `reason` (nothing when the range is empty)."""
        if hi > lo:
            self._parts.append(PendingGroup(members, lo, hi, reason, code))
            self._count += hi - lo

    def groups(self) -> Iterator[tuple[Iterable[str], str, WaitCode]]:
        """(job names, reason, code) per entry: a group's names without a tuple per job."""
        for part in self._parts:
            if isinstance(part, PendingGroup):
                yield (job.name for job in islice(part.members, part.lo, part.hi)), \
                    part.reason, part.code
            else:
                yield (part.job,), part.reason, part.code

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Pending]:
        for part in self._parts:
            if isinstance(part, PendingGroup):
                reason, code = part.reason, part.code
                for job in islice(part.members, part.lo, part.hi):
                    yield Pending(job.name, reason, code)
            else:
                yield part

    @overload
    def __getitem__(self, index: int) -> Pending: ...

    @overload
    def __getitem__(self, index: slice) -> list[Pending]: ...

    def __getitem__(self, index: int | slice) -> Pending | list[Pending]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step != 1:
                return list(self)[index]
            return list(islice(self, start, stop))
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("pending index out of range")
        return next(islice(self, index, None))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WaitList | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"WaitList({list(self)!r})"


@dataclass
class Decisions:
    """What one cycle decided. `deferred`: how many waiting jobs got `WaitCode.DEFERRED`
    because the cycle reached its budget of starts (`suan.sched.budget`); when it is not zero
    the caller runs the next cycle at once."""

    starts: list[Start] = field(default_factory=list)
    preemptions: list[Preemption] = field(default_factory=list)
    pending: WaitList = field(default_factory=WaitList)
    reservation: dict[str, Any] | None = None
    deferred: int = 0

    def started(self) -> dict[str, Start]:
        return {start.job.name: start for start in self.starts}

    def reasons(self) -> dict[str, Pending]:
        return {wait.job: wait for wait in self.pending}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of a dry-run cycle (see docs/schedule-json.md)."""
        return {
            "placements": [_placement_json(start) for start in self.starts],
            "preemptions": [
                {"job": p.job, "reason": p.reason, "for_job": p.for_job} for p in self.preemptions
            ],
            "pending": [
                {"job": w.job, "reason": w.reason, "code": str(w.code)} for w in self.pending
            ],
            "reservation": self.reservation,
        }


def _placement_json(start: Start) -> dict[str, Any]:
    replicas = []
    for replica in start.replicas:
        entry: dict[str, Any] = {
            "node": replica.node,
            "devices": list(replica.devices),
            "group": start.job.groups[replica.group].name,
        }
        if replica.milli != 1000:
            entry["share"] = replica.milli / 1000
        replicas.append(entry)
    return {
        "job": start.job.name,
        "replicas": replicas,
        "reason": start.why,
        "accelerators": list(start.accelerators),
        "after_preempting": list(start.after_preempting),
        "backfilled": start.backfilled,
    }
