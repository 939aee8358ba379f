"""Submitting dependencies and arrays: which stored jobs a dependency names, and the members
an `array` spec becomes.

A dependency target is, in this order: a job id; an array id (every member); the name of a
job stored earlier in the same file; the name of the submitting user's newest job (or array)
of that name. A target in another user's job is allowed only where the submitter may view
that job (its queue lists them as a viewer or admin, or they are a cluster admin): a job the
submitter may not see is answered as unknown, as the API answers it.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.auth import Identity, can_view
from suan.control.jobs import load_queues
from suan.control.models import JobRow
from suan.errors import FieldProblem, SpecError
from suan.jobs.batch_syntax import DEPENDENCY_ALLOWED, Dependency, parse_dependencies


class DependencyTargets:
    """Resolves the targets of a submission's dependencies to job ids (see module doc)."""

    def __init__(self, session: Session, identity: Identity):
        self.session = session
        self.identity = identity
        self.in_file: dict[str, list[str]] = {}
        self._queues = {queue.name: queue for queue in load_queues(session)}

    def stored(self, name: str, ids: list[str]) -> None:
        """A job (or array) of this file was stored as `ids`; later documents may name it."""
        self.in_file[name] = ids

    def resolve(self, text: str | None, user: str, where: str) -> str | None:
        """The JSON `waits_for` of a job of `user` whose spec says `text` (None: none);
        SpecError naming `where` for a target that is unknown or not visible."""
        if not text:
            return None
        pairs: list[list[str]] = []
        problems = []
        for dependency in parse_dependencies(text):
            ids = self._ids(dependency, user)
            if not ids:
                message = f"no job, array or job name {dependency.target!r} that you may see"
                problems.append(FieldProblem(where, message, DEPENDENCY_ALLOWED))
            pairs.extend([dependency.kind, job_id] for job_id in ids)
        if problems:
            raise SpecError("request", problems)
        return json.dumps(pairs)

    def _ids(self, dependency: Dependency, user: str) -> list[str]:
        target = dependency.target
        row = self.session.get(JobRow, target)
        if row is not None:
            return [row.id] if self._visible(row) else []
        members = self._array(target)
        if members:
            return [r.id for r in members] if self._visible(members[0]) else []
        if target in self.in_file:
            return self.in_file[target]
        query = (
            select(JobRow)
            .where(JobRow.name == target, JobRow.user == user)
            .order_by(JobRow.submit_time.desc())
            .limit(1)
        )
        newest = self.session.scalars(query).first()
        if newest is None:
            return []
        if newest.array_id:
            return [r.id for r in self._array(newest.array_id)]
        return [newest.id]

    def _array(self, array_id: str) -> list[JobRow]:
        query = select(JobRow).where(JobRow.array_id == array_id).order_by(JobRow.array_index)
        return list(self.session.scalars(query))

    def _visible(self, row: JobRow) -> bool:
        return can_view(self.identity, row, self._queues.get(row.queue))
