"""Time limits: each run of a job ends at its `timeLimit`, and queues give defaults and bounds.

The limit counts per run, as Slurm's does: from the start of the current attempt (its
`start_time`, set when it is scheduled). A run that restarts after a failure, a preemption,
a drain or a requeue gets the whole limit again; a run that exceeds it is stopped (SIGTERM to
the gang, the stop grace, SIGKILL) and the job ends in the final state `timeout` whatever its
restart policy says: the same run would only be stopped again at the same point.

At submit, a job without `timeLimit` takes its queue's `defaultTimeLimit`, else its
`maxTimeLimit`; a job asking for more than `maxTimeLimit` is refused, the field named.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from suan.control.checkpoint_advice import short_duration
from suan.errors import FieldProblem
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.jobs.units import format_duration


def overrun(job: Job, start_time: float | None, now: float) -> str | None:
    """Why the run of `job` that started at `start_time` must stop at `now` ("ran 2h00m, over
    its time limit of 2h"), or None while it is within its limit (or has none)."""
    limit = job.time_limit_s
    if limit is None or start_time is None or now - start_time <= limit:
        return None
    return f"ran {_ran(now - start_time)}, over its time limit of {format_duration(limit)}"


def _ran(seconds: float) -> str:
    """Elapsed time with minutes always shown past an hour ("2h00m"), else `short_duration`."""
    if seconds < 3600:
        return short_duration(seconds)
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def with_queue_limits(
    jobs: list[Job],
    job_docs: list[tuple[int, dict[str, Any]]],
    queues: dict[str, QueueSpec],
) -> tuple[list[Job], list[FieldProblem]]:
    """`jobs` with their queue's default time limit applied (written into each stored
    document too, so a later parse gives the same Job), and a problem for each job whose
    limit is over its queue's maximum. Jobs of unknown queues are left to the caller."""
    limited, problems = [], []
    for job, (index, document) in zip(jobs, job_docs, strict=True):
        queue = queues.get(job.queue)
        if queue is None:
            limited.append(job)
            continue
        most = queue.max_time_limit_s
        if job.time_limit_s is None:
            given = queue.default_time_limit_s or most
            if given is not None:
                job = replace(job, time_limit_s=given)
                document.setdefault("spec", {})["timeLimit"] = given
        elif most is not None and job.time_limit_s > most:
            problems.append(FieldProblem(
                f"documents[{index}].spec.timeLimit",
                f"{format_duration(job.time_limit_s)} is over the maxTimeLimit of queue "
                f"{queue.name!r} ({format_duration(most)})",
                f"a duration up to {format_duration(most)}, or leave it out for the queue's "
                "default",
            ))
        limited.append(job)
    return limited, problems
