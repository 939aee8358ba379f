"""Submitting a spec file: validate it completely, then store its jobs and queues.

Every problem is a `FieldProblem` whose path starts with `documents[k]`, as in
docs/job-spec.md; the API answers them as one 422. Beyond the spec's own checks a submission
needs: a command for every job, queues that exist (or come in the same file) and that the
caller may submit to (a queue listing `submitters`), queues and parents defined only by a
cluster admin, and `spec.user` left out (or the caller's own name) unless the caller is an
admin.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.auth import Identity, may_submit, who_may_submit
from suan.control.batch_submit import DependencyTargets
from suan.control.jobs import load_queues, remember_job
from suan.control.lifecycle import JobState
from suan.control.models import JobRow, QueueRow
from suan.control.store import add_event
from suan.control.time_limits import with_queue_limits
from suan.errors import FieldProblem, SpecError, SuanError
from suan.jobs.batch_syntax import ArraySpec, parse_array
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.jobs.spec import flatten_documents, parse_documents, read_stream


class Forbidden(Exception):
    """The caller may not do this (an HTTP 403), with the reason."""


@dataclass
class Submission:
    """What a submission stored: job ids (in file order) and queue names."""

    jobs: list[dict[str, str]] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)


def raw_documents(text: str) -> list[dict[str, Any]]:
    """The documents of a spec file that `load_documents_text` accepted, in its order, read
    by the same loader."""
    return raw_documents_of(read_stream(text, "request"))


def raw_documents_of(stream: list[Any]) -> list[dict[str, Any]]:
    """`raw_documents` of a stream already read (`read_stream`): the YAML is parsed once, and
    its documents counted as `parse_documents` counts them."""
    return flatten_documents(stream)


def submit(
    session: Session,
    identity: Identity,
    text: str,
    workdir: str | None,
    home: Path,
    checkpoint_roots: tuple[str, ...] = (),
) -> Submission:
    """Validate and store the spec file `text`; raise SpecError (422) or Forbidden (403).

    A job's `checkpoint.dir` must lie in its user's area: `<home>/users/<user>/`, or
    `<root>/<user>/` under one of the operator's `checkpoint_roots`.

    The spec is parsed once: the Job checked here is the one the scheduler and the launch use
    (`remember_job`). Each job row stores its document as JSON; the parser refuses values JSON
    cannot hold as they are, so a later parse of the stored document (after a restart, by
    `scheduler_job`, with the same parser) gives an equal Job."""
    stream = read_stream(text, "request")
    raw = copy.deepcopy(stream)  # as submitted, whatever parsing does with its copy
    jobs, queues = parse_documents(stream, "request")
    if not jobs and not queues:
        raise SpecError(
            "request",
            [
                FieldProblem(
                    "",
                    "the file holds no Job or Queue document",
                    "kind: Job or kind: Queue documents",
                )
            ],
        )
    documents = raw_documents_of(raw)
    job_docs = [(k, d) for k, d in enumerate(documents) if d.get("kind") == "Job"]
    queue_docs = [(k, d) for k, d in enumerate(documents) if d.get("kind") == "Queue"]
    if queues and not identity.admin:
        raise Forbidden(f"only a cluster admin defines queues; {identity.user} is not one")
    known = {q.name: q for q in (*load_queues(session), *queues)}
    problems = _job_problems(jobs, job_docs, known, identity)
    jobs, limit_problems = with_queue_limits(jobs, job_docs, known)
    problems += limit_problems
    problems += _checkpoint_problems(jobs, job_docs, identity, home, checkpoint_roots)
    if problems:
        raise SpecError("request", problems)
    result = Submission()
    for queue, (_, document) in zip(queues, queue_docs, strict=True):
        _store_queue(session, queue, document)
        result.queues.append(queue.name)
    targets = DependencyTargets(session, identity)
    for job, (index, document) in zip(jobs, job_docs, strict=True):
        spec = document.get("spec") or {}
        where = f"documents[{index}].spec.dependencies"
        waits_for = targets.resolve(spec.get("dependencies"), job.user or identity.user, where)
        array = parse_array(str(spec["array"])) if spec.get("array") is not None else None
        rows = _store_array(session, identity, job, document, workdir, home, array)
        for row in rows:
            row.waits_for = waits_for
            remember_job(row, job)
            answer = {"id": row.id, "name": row.name, "queue": row.queue}
            result.jobs.append({**answer, "array": row.array_id} if row.array_id else answer)
        targets.stored(job.name, [row.id for row in rows])
    return result


def _store_array(
    session: Session,
    identity: Identity,
    job: Job,
    document: dict[str, Any],
    workdir: str | None,
    home: Path,
    array: ArraySpec | None,
) -> list[JobRow]:
    """The rows of one job document: itself, or one member per index of its array, each
    with the id `<array id>-<index>`."""
    if array is None:
        return [_store_job(session, identity, job, document, workdir, home)]
    array_id = _new_job_id(session, job.name)
    return [
        _store_job(session, identity, job, document, workdir, home,
                   ArrayMember(array_id, index, len(array.indices), array.limit))
        for index in array.indices
    ]


def user_areas(user: str, home: Path, roots: tuple[str, ...]) -> list[Path]:
    """Where `user`'s jobs may keep checkpoints of their own naming."""
    return [Path(home) / "users" / user, *(Path(root) / user for root in roots)]


def _checkpoint_problems(
    jobs: list[Job],
    job_docs: list[tuple[int, dict[str, Any]]],
    identity: Identity,
    home: Path,
    roots: tuple[str, ...],
) -> list[FieldProblem]:
    problems = []
    for job, (index, document) in zip(jobs, job_docs, strict=True):
        wanted = ((document.get("spec") or {}).get("checkpoint") or {}).get("dir")
        if not wanted:
            continue
        areas = user_areas(job.user or identity.user, home, roots)
        path = Path(os.path.normpath(str(wanted)))
        if not path.is_absolute() or not any(path.is_relative_to(area) for area in areas):
            problems.append(
                FieldProblem(
                    f"documents[{index}].spec.checkpoint.dir",
                    f"{wanted!r} is outside your area",
                    "a path under " + " or ".join(f"{area}/" for area in areas),
                )
            )
    return problems


def _model_problems(model: str, path: str) -> list[FieldProblem]:
    """A `model` the planner cannot read, as problems at `path` (empty when it reads it)."""
    from suan.plan.models import builtin_names, load_model

    try:
        load_model(model)
    except SuanError as exc:
        return [FieldProblem(path, f"the planner cannot read model {model!r}: {exc}",
                             "a built-in model (" + ", ".join(builtin_names())
                             + ") or the path of a config.json on the server")]
    return []


def _job_problems(
    jobs: list[Job],
    job_docs: list[tuple[int, dict[str, Any]]],
    queues: dict[str, QueueSpec],
    identity: Identity,
) -> list[FieldProblem]:
    problems = []
    for job, (index, _) in zip(jobs, job_docs, strict=True):
        prefix = f"documents[{index}].spec"
        if not job.command:
            problems.append(
                FieldProblem(
                    f"{prefix}.command",
                    "a job needs a command to run",
                    "a list of strings, e.g. [python, train.py]",
                )
            )
        if job.model is not None:
            problems.extend(_model_problems(job.model, f"{prefix}.model"))
        if job.queue not in queues:
            problems.append(
                FieldProblem(
                    f"{prefix}.queue", f"unknown queue {job.queue!r}", ", ".join(sorted(queues))
                )
            )
        elif not may_submit(identity, queues[job.queue]):
            raise Forbidden(
                f"{prefix}.queue: {identity.user} may not submit to queue {job.queue!r}; "
                f"it takes jobs from {who_may_submit(queues[job.queue])}"
            )
        if job.user and job.user != identity.user and not identity.admin:
            raise Forbidden(
                f"{prefix}.user: {identity.user} may not submit jobs as "
                f"{job.user!r}; leave spec.user out"
            )
    return problems


def _store_queue(session: Session, queue: QueueSpec, document: dict[str, Any]) -> None:
    row = session.get(QueueRow, queue.name)
    text = json.dumps(document)
    if row is None:
        session.add(QueueRow(name=queue.name, document=text, updated_at=time.time()))
    else:
        row.document, row.updated_at = text, time.time()


@dataclass(frozen=True)
class ArrayMember:
    """Member `index` of array `array_id` of `count` members, at most `limit` running."""

    array_id: str
    index: int
    count: int
    limit: int | None


def _store_job(
    session: Session,
    identity: Identity,
    job: Job,
    document: dict[str, Any],
    workdir: str | None,
    home: Path,
    member: ArrayMember | None = None,
) -> JobRow:
    user = job.user or identity.user
    job_id = f"{member.array_id}-{member.index}" if member else _new_job_id(session, job.name)
    checkpoint = ((document.get("spec") or {}).get("checkpoint") or {}).get("dir")
    checkpoint_dir = checkpoint or str(home / "jobs" / job_id / "checkpoints")
    now = time.time()
    row = JobRow(
        id=job_id,
        name=job.name,
        user=user,
        queue=job.queue,
        state=JobState.PENDING.value,
        document=json.dumps(document),
        checkpoint_dir=checkpoint_dir,
        workdir=workdir or "",
        submit_time=now,
        attempt=0,
        restarts=0,
        reason="waiting for the scheduler",
        reason_code="",
        cancel_requested=False,
        stop_reason="",
    )
    if member is not None:
        row.array_id, row.array_index = member.array_id, member.index
        row.array_count, row.array_limit = member.count, member.limit
    session.add(row)
    session.flush()
    add_event(
        session,
        job_id,
        "submitted",
        f"submitted by {identity.user} as {user} to queue {job.queue}",
        now,
    )
    return row


def _new_job_id(session: Session, name: str) -> str:
    """`<name>-<6 hex digits>`, not yet taken as a job or an array id: with many jobs of one
    name a random suffix alone collides (one in a few hundred draws at 100,000 jobs), so a
    taken id is drawn again."""
    while True:
        job_id = f"{name}-{secrets.token_hex(3)}"
        taken = select(JobRow.id).where(JobRow.array_id == job_id).limit(1)
        if session.get(JobRow, job_id) is None and session.scalar(taken) is None:
            return job_id
