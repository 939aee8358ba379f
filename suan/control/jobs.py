"""Job rows <-> the scheduler's `Job`, and the small reads the API and reconciler share."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suan.cluster.snapshot import ReplicaPlacement
from suan.control.models import JobRow, QueueRow, RankRow
from suan.exec.processes import process_count
from suan.jobs.model import Job
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec
from suan.jobs.spec import parse_job, parse_queue


@lru_cache(maxsize=4096)
def _parsed(document: str) -> Job:
    """The Job of a stored document, by the parser submission used (`parse_job` validates a
    document exactly as `parse_documents` does each document of a file)."""
    return parse_job(json.loads(document), source="store")


JOB_CACHE_SIZE = 200_000
"""Jobs kept by `scheduler_job` (about 1 KiB each): more than a large queue holds, so that a
reconciler tick over every waiting job parses none of them again."""
_jobs: dict[str, tuple[str, Job]] = {}
_jobs_lock = threading.Lock()


def scheduler_job(row: Any) -> Job:
    """The scheduler's Job for a stored job: named by its id, with the submitter as user.

    `row` is a JobRow or any row with its `id`, `document`, `user`, `queue` and `submit_time`.
    Those never change once a job is stored, so the Job is kept by id (and checked against
    the document) for the next call: a tick over 10,000 waiting jobs would otherwise spend
    most of its time parsing and validating their specs again."""
    found = _jobs.get(row.id)
    if found is not None and found[0] == row.document:
        job = found[1]
        if (job.submit_time, job.user, job.queue) == (row.submit_time, row.user, row.queue):
            return job
    return _remember(row)


def known_job(row: Any) -> Job | None:
    """The Job `scheduler_job` built for `row` (its `id`, `user`, `queue` and `submit_time`;
    no document needed) when it is still kept, else None."""
    found = _jobs.get(row.id)
    if found is None:
        return None
    job = found[1]
    if (job.submit_time, job.user, job.queue) == (row.submit_time, row.user, row.queue):
        return job
    return None


def remember_job(row: Any, job: Job) -> Job:
    """Keep `job`, parsed from `row.document`, as `scheduler_job(row)`: submission hands over
    the Job it checked, so the scheduler and the launch use that parse, not a second one.
    Returns the kept Job (named by the row's id, with its user, queue and submit time)."""
    job = replace(job, name=row.id, user=row.user, queue=row.queue, submit_time=row.submit_time)
    with _jobs_lock:  # the API's threads and the reconciler share the cache
        if len(_jobs) >= JOB_CACHE_SIZE:
            del _jobs[next(iter(_jobs))]  # the oldest entry
        _jobs[row.id] = (row.document, job)
    return job


def _remember(row: Any) -> Job:
    return remember_job(row, _parsed(row.document))


def rank_count(job: Job, placement: tuple[ReplicaPlacement, ...] = ()) -> int:
    """How many processes (ranks) each launch of `job` starts (suan.exec.processes): those of
    its `placement` when it has one (a replica that spans nodes starts one rank set per node
    part), else one set per replica."""
    if placement:
        return process_count([len(replica.devices) for replica in placement], job.processes)
    counts = [group.accelerators for group in job.groups for _ in range(group.replicas)]
    return process_count([int(c) for c in counts], job.processes)


def row_rank_count(session: Session, row: JobRow) -> int:
    """Ranks of the job's current or last launch: those its placement starts while it holds
    devices, else those recorded for its last attempt, else one set per replica."""
    job = scheduler_job(row)
    placement = placement_of(row)
    if placement:
        return rank_count(job, placement)
    recorded = session.scalar(select(func.count()).where(
        RankRow.job_id == row.id, RankRow.attempt == row.attempt))
    return int(recorded or 0) or rank_count(job)


def placement_of(row: JobRow) -> tuple[ReplicaPlacement, ...]:
    """The stored placement of a job holding devices (empty when it holds none)."""
    if not row.placement:
        return ()
    return tuple(
        ReplicaPlacement(
            item["group"], item["node"], tuple(item["devices"]), item.get("milli", 1000)
        )
        for item in json.loads(row.placement)["replicas"]
    )


def placement_json(
    replicas: tuple[ReplicaPlacement, ...], accelerator: str | None, why: str
) -> str:
    """The placement as stored on the job row."""
    return json.dumps(
        {
            "accelerator": accelerator,
            "why": why,
            "replicas": [
                {"group": r.group, "node": r.node, "devices": list(r.devices), "milli": r.milli}
                for r in replicas
            ],
        }
    )


def load_queues(session: Session) -> tuple[QueueSpec, ...]:
    """Every defined queue, plus `default` when it is not defined."""
    queues = [
        parse_queue(json.loads(row.document), source="store")
        for row in session.query(QueueRow).order_by(QueueRow.name)
    ]
    if not any(queue.name == DEFAULT_QUEUE.name for queue in queues):
        queues.append(DEFAULT_QUEUE)
    return tuple(queues)


def job_document(row: JobRow) -> dict[str, Any]:
    return json.loads(row.document)
