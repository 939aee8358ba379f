"""Cursor paging of job lists: newest first, by (submit_time, id), which never change.

A page is `limit` jobs and, when more match, a `next` token that starts the following page
after the page's last job. Pages are stable while jobs are submitted: a new job is newer than
every job already listed, so it shows on a first page and never shifts later pages; a job that
leaves the list (it finished, without `all`) is simply not on later pages. `remaining` says
how many matching jobs follow the page, so that a cut list is never taken for a whole one.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
from dataclasses import dataclass

from sqlalchemy import Select, and_, func, or_
from sqlalchemy.orm import Session

from suan.control.models import JobRow


class BadCursor(ValueError):
    """A page token that this server did not hand out (or that was altered)."""


@dataclass(frozen=True)
class Cursor:
    """The position after a listed job: its submit time and id."""

    submit_time: float
    job_id: str

    def token(self) -> str:
        """The opaque page token for this position (URL-safe)."""
        raw = json.dumps([self.submit_time, self.job_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> Cursor:
        """The position of `token`; BadCursor when it is not a token of `token()`."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            submit_time, job_id = json.loads(raw)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            raise BadCursor("not a page token of this server") from None
        if not isinstance(submit_time, int | float) or isinstance(submit_time, bool):
            raise BadCursor("not a page token of this server")
        if not isinstance(job_id, str) or not job_id:
            raise BadCursor("not a page token of this server")
        return cls(float(submit_time), job_id)


@dataclass(frozen=True)
class Page:
    """One page of jobs, the token of the next page (None on the last) and how many follow."""

    rows: list[JobRow]
    next: str | None
    remaining: int


def _after(cursor: Cursor):  # type: ignore[no-untyped-def]
    """Jobs listed after `cursor`, newest first: older, or as old with a smaller id. Written
    so that an index on (submit_time, id) bounds the scan."""
    return and_(
        JobRow.submit_time <= cursor.submit_time,
        or_(JobRow.submit_time < cursor.submit_time, JobRow.id < cursor.job_id),
    )


def job_page(
    session: Session,
    query: Select,
    limit: int,
    after: str | None,
    states: tuple[str, ...] | None = None,
) -> Page:
    """The page of `query` (a `select(JobRow)` with its filters) after the token `after` (None:
    the first page), of the jobs in `states` (None: any state). Raises BadCursor for a token
    this server did not hand out.

    With `states`, each state is read on its own, newest first along the index on (state,
    submit_time, id), and the answers merged: one query over several states would read and
    sort every job of them for each page."""
    parts = [query] if states is None else [query.where(JobRow.state == s) for s in states]
    if after:
        position = _after(Cursor.parse(after))
        parts = [part.where(position) for part in parts]
    newest = (JobRow.submit_time.desc(), JobRow.id.desc())
    found = [list(session.scalars(p.order_by(*newest).limit(limit + 1))) for p in parts]
    merged = heapq.merge(*found, key=lambda row: (row.submit_time, row.id), reverse=True)
    rows = list(itertools.islice(merged, limit + 1))
    if len(rows) <= limit:
        return Page(rows, None, 0)
    rows = rows[:limit]
    cursor = Cursor(rows[-1].submit_time, rows[-1].id)
    counts = (
        session.scalar(p.where(_after(cursor)).with_only_columns(func.count()).order_by(None))
        for p in parts
    )
    return Page(rows, cursor.token(), sum(count or 0 for count in counts))
