"""The pending jobs, kept between cycles in classes of jobs that a cycle treats alike.

A class holds the waiting jobs that agree on everything a cycle's verdict for a job reads
besides its name and submit time: priority, queue, shape (`Job.shape_id`: groups, topology,
runtime estimate, model, per-type speeds), series, attained service and oracle duration. Every
order plugin's key is (a part fixed by those fields, submit time, name), so inside a class the
policy's order is (submit time, name) whatever the policy, and a class's members are kept
sorted that way. A cycle then walks class heads (`suan.sched.sweep`) and, when a head's
verdict is remembered for its shape, sets the whole class aside at once instead of visiting
each member.

The index is updated as jobs arrive and leave (`add`, `discard`, `sync`), never re-sorted as
a whole. A cycle and the waiting groups it records (`suan.sched.decisions.PendingGroup`) read
a class's member list between two positions; the index never changes a list in place below
its end: it appends, moves the class's head past a leaving first member, and replaces the
list (copy on write) for any other insertion or removal.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator
from itertools import islice
from operator import attrgetter, lt

from suan.jobs.model import Job

ClassKey = tuple[int, str, int, str, float, float | None]

MEMBER_ORDER = attrgetter("submit_time", "name")
"""The order of a class's members: the policy's order inside the class."""
SUBMIT_TIME = attrgetter("submit_time")

COMPACT_AFTER = 64
"""Members passed over at a class's head before its list is compacted (copied without them),
once they are also at least half the list: amortised O(1) per leaving job."""


CLASS_KEY: Callable[[Job], ClassKey] = attrgetter(
    "priority", "queue", "shape_id", "series", "attained_service_s", "duration_s")


def class_key(job: Job) -> ClassKey:
    """What a job shares with every job of its class."""
    return CLASS_KEY(job)


def _rising(members: list[Job]) -> bool:
    """Whether submit times strictly rise along `members` (then they are in member order
    without a sort: lists usually come in submit order)."""
    if len(members) < 2:
        return True
    times = list(map(SUBMIT_TIME, members))
    return all(map(lt, times, islice(times, 1, None)))


def file_classes(jobs: Collection[Job]) -> list[JobClass]:
    """`jobs` in their classes, in the order each class first appears: what a cycle given a
    plain list walks (no index by name is built)."""
    grouped: dict[ClassKey, list[Job]] = {}
    for key, job in zip(map(CLASS_KEY, jobs), jobs, strict=True):
        members = grouped.get(key)
        if members is None:
            grouped[key] = [job]
        else:
            members.append(job)
    classes = []
    for key, members in grouped.items():
        if not _rising(members):
            members.sort(key=MEMBER_ORDER)
        classes.append(JobClass(key, members))
    return classes


class JobClass:
    """The waiting jobs of one class: `members[head:]`, in (submit time, name) order."""

    __slots__ = ("head", "key", "members")

    def __init__(self, key: ClassKey, members: list[Job]):
        self.key = key
        self.members = members
        self.head = 0

    def __len__(self) -> int:
        return len(self.members) - self.head

    def insert(self, job: Job) -> None:
        members = self.members
        if len(members) == self.head or MEMBER_ORDER(members[-1]) < MEMBER_ORDER(job):
            members.append(job)
            return
        at = bisect_left(members, MEMBER_ORDER(job), lo=self.head, key=MEMBER_ORDER)
        self.members = [*members[self.head:at], job, *members[at:]]
        self.head = 0

    def remove(self, job: Job) -> None:
        members, head = self.members, self.head
        if members[head] is job:
            self.head = head + 1
            if self.head >= COMPACT_AFTER and 2 * self.head >= len(members):
                self.members, self.head = members[self.head:], 0
            return
        at = bisect_left(members, MEMBER_ORDER(job), lo=head, key=MEMBER_ORDER)
        if at == len(members) or members[at] is not job:
            raise KeyError(job.name)
        self.members = members[head:at] + members[at + 1:]
        self.head = 0


class PendingIndex:
    """Waiting jobs by name and by class. A job appears once; adding a job under a name the
    index holds replaces the earlier job (it may have changed class)."""

    def __init__(self, jobs: Iterable[Job] = ()):
        self.jobs: dict[str, Job] = {}
        self.classes: dict[ClassKey, JobClass] = {}
        self._bulk_load(jobs)

    def _bulk_load(self, jobs: Iterable[Job]) -> None:
        by_name = {job.name: job for job in jobs}
        self.classes = {job_class.key: job_class for job_class in file_classes(by_name.values())}
        self.jobs = by_name

    def __len__(self) -> int:
        return len(self.jobs)

    def __contains__(self, name: object) -> bool:
        return name in self.jobs

    def __iter__(self) -> Iterator[Job]:
        """Every waiting job, class by class."""
        for job_class in self.classes.values():
            yield from job_class.members[job_class.head:]

    def add(self, job: Job) -> None:
        """File a job that now waits (replacing an earlier job of the same name)."""
        known = self.jobs.get(job.name)
        if known is job:
            return
        if known is not None:
            self.discard(job.name)
        self.jobs[job.name] = job
        key = class_key(job)
        job_class = self.classes.get(key)
        if job_class is None:
            self.classes[key] = JobClass(key, [job])
        else:
            job_class.insert(job)

    def discard(self, name: str) -> Job | None:
        """Drop the job called `name` (started, cancelled, gone); the job, or None."""
        job = self.jobs.pop(name, None)
        if job is None:
            return None
        key = class_key(job)
        job_class = self.classes[key]
        job_class.remove(job)
        if not len(job_class):
            del self.classes[key]
        return job

    def sync(self, jobs: Iterable[Job]) -> None:
        """Make the index hold exactly `jobs` (by name and identity): O(len(jobs)) lookups
        plus the work of the changes, for a caller that only knows the whole waiting list."""
        wanted = {job.name: job for job in jobs}
        for name in [name for name, job in self.jobs.items() if wanted.get(name) is not job]:
            self.discard(name)
        held = self.jobs
        for name, job in wanted.items():
            if name not in held:
                self.add(job)

    def live_classes(self) -> list[JobClass]:
        """The classes with waiting members, in a fixed order (first filed first)."""
        return [job_class for job_class in self.classes.values() if len(job_class)]
