"""Queue-order plugins: the order in which pending jobs are considered.

Each plugin gives a sort key per job. Fair share is not a key but an interleaving: among jobs of
one priority band, queues take turns by lowest dominant-resource share (DRF), see
`interleave_fair_share`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sched.quota import QuotaBook
from suan.sched.service import LAS_CLASSES, ServiceClasses

SortKey = tuple[float | str, ...]

LAS_THRESHOLDS_S: tuple[float, ...] = (3_600.0, 36_000.0)
"""Device-seconds of attained service that move a job to a lower LAS queue (Tiresias-style
discretised 2D-LAS; Tiresias uses few queues with thresholds of this order of magnitude)."""


def _executed_s(job: Job) -> float:
    devices = job.devices or 1.0
    return job.attained_service_s / devices


def _duration(job: Job) -> float:
    if job.duration_s is not None:
        return job.duration_s
    return job.runtime_estimate_s if job.runtime_estimate_s is not None else math.inf


@dataclass(frozen=True)
class OrderPlugin:
    """A named queue order. `key(job)` sorts ascending; earlier is considered first.

    A `classed` order sorts by the job's service class (`suan.sched.service`), then FIFO; its
    classes come from the cycle's snapshot (`key_for`), and `key` uses the LAS classes.
    """

    name: str
    key: Callable[[Job], SortKey]
    description: str
    classed: bool = False

    def key_for(self, service: ServiceClasses | None) -> Callable[[Job], SortKey]:
        """The sort key under the snapshot's learned service classes."""
        if not self.classed or service is None:
            return self.key
        return _class_key(service)


def _class_key(service: ServiceClasses) -> Callable[[Job], SortKey]:
    level = service.level

    def key(job: Job) -> SortKey:
        return (level(job.queue, job.attained_service_s, job.series), job.submit_time, job.name)

    return key


def running_level(service: ServiceClasses, alloc: Allocation, now: float) -> int:
    """The service class of a running allocation at `now` (its service grows while it runs)."""
    job = alloc.job
    return service.level(job.queue, alloc.attained_at(now), job.series)


def las_level(job: Job, thresholds: Sequence[float] = LAS_THRESHOLDS_S) -> int:
    """The discretised LAS queue of a job: how many thresholds its service has passed."""
    attained = job.attained_service_s
    if attained < thresholds[0]:
        return 0
    return sum(1 for limit in thresholds if attained >= limit)


ORDERS: dict[str, OrderPlugin] = {
    plugin.name: plugin
    for plugin in (
        OrderPlugin("fifo", attrgetter("submit_time", "name"), "first come, first served"),
        OrderPlugin(
            "priority",
            lambda j: (-j.priority, j.submit_time, j.name),
            "highest priority first, then FIFO",
        ),
        OrderPlugin(
            "sjf",
            lambda j: (_duration(j), j.submit_time, j.name),
            "shortest job first (oracle duration, else the runtime estimate)",
        ),
        OrderPlugin(
            "srtf",
            lambda j: (_duration(j) - _executed_s(j), j.submit_time, j.name),
            "shortest remaining time first (oracle duration minus time already run)",
        ),
        OrderPlugin(
            "las",
            lambda j: (las_level(j), j.submit_time, j.name),
            "discretised least attained service (device-seconds), FIFO inside a level",
        ),
        OrderPlugin(
            "gittins",
            _class_key(LAS_CLASSES),
            "service classes from the Gittins index of attained device-seconds under each "
            "queue's learned distribution of finished jobs (LAS levels until it has history), "
            "FIFO inside a class",
            classed=True,
        ),
    )
}


def interleave_fair_share(
    jobs: Sequence[Job], key: Callable[[Job], SortKey], quota: QuotaBook
) -> Iterator[Job]:
    """Jobs in priority bands (highest first); inside a band, the queue with the lowest
    dominant share (then the lowest name) goes next, re-read after every job it yields: a
    queue keeps the turn while it is still the lowest, and hands it over once a started job
    lifts its share above the next queue's."""
    bands: dict[int, dict[str, list[Job]]] = {}
    for job in jobs:
        bands.setdefault(job.priority, {}).setdefault(job.queue, []).append(job)
    for priority in sorted(bands, reverse=True):
        per_queue = bands[priority]
        for queue_jobs in per_queue.values():
            queue_jobs.sort(key=key, reverse=True)
        heap = [(quota.dominant_share(q), q) for q in per_queue]
        heapq.heapify(heap)
        while heap:
            share, queue = heapq.heappop(heap)
            waiting = per_queue[queue]
            seen = quota.version
            while waiting:
                yield waiting.pop()
                if quota.version == seen:
                    continue
                seen = quota.version
                share = quota.dominant_share(queue)
                if heap and (share, queue) > heap[0]:
                    break
            if waiting:
                heapq.heappush(heap, (share, queue))


def ordered(
    jobs: Sequence[Job], plugin: OrderPlugin, quota: QuotaBook, fair_share: bool,
    service: ServiceClasses | None = None,
) -> Iterator[Job]:
    """Pending jobs in the order the policy considers them (`service`: the snapshot's learned
    classes, for a classed order)."""
    key = plain_key(jobs, plugin, service)
    if fair_share:
        return interleave_fair_share(jobs, key, quota)
    return iter(sorted(jobs, key=key))


_ATTAINED = attrgetter("attained_service_s")


def plain_key(jobs: Sequence[Job], plugin: OrderPlugin, service: ServiceClasses | None
              ) -> Callable[[Job], SortKey]:
    """LAS orders exactly like FIFO while no job has passed the first threshold, and a classed
    order while no job has any service: then use the FIFO key, which is computed without a
    Python call per job. It reads only the jobs' attained service, queues and series, so one
    job per class of `suan.sched.pending_index` gives the key for all of them."""
    if plugin.name == "las" and max(
        map(_ATTAINED, jobs), default=0.0
    ) < LAS_THRESHOLDS_S[0]:
        return ORDERS["fifo"].key
    if plugin.classed and not any(map(_ATTAINED, jobs)) and (
            service is None or len({service.level(q, 0.0, s)
                                    for q, s in {(j.queue, j.series) for j in jobs}}) < 2):
        return ORDERS["fifo"].key
    return plugin.key_for(service)
