"""The filters of GET /v1/jobs: `user`, `queue` and `state`, each repeatable or a comma list
(`state=pending,running` is `state=pending&state=running`).

A job matches when it has one of the users, one of the queues and one of the states given
(a filter left out matches every job). A `state` filter replaces the default of live jobs:
`state=failed` lists failed jobs without `all=true`. An unknown state is a 422 naming the
field and the states there are, as is a value with NUL or a lone surrogate (which no name
holds); the filters never widen what the caller may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException
from sqlalchemy import Select

from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.errors import UNPRINTABLE, escaped

MAX_VALUES = 100
"""Values one filter may hold: a list longer than this is a mistake, not a query."""
MAX_LENGTH = 255
"""Characters of one value: longer than any user, queue or state name can be."""


@dataclass(frozen=True)
class JobFilters:
    """The parsed filters: empty tuples where a filter was left out."""

    users: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    states: tuple[str, ...] = ()

    def apply(self, query: Select) -> Select:
        """`query` narrowed to the users and queues asked for (states go to job_page)."""
        if self.users:
            query = query.where(JobRow.user.in_(self.users))
        if self.queues:
            query = query.where(JobRow.queue.in_(self.queues))
        return query

    def paged_states(self, include_all: bool) -> tuple[str, ...] | None:
        """The states job_page reads: the asked ones, else the live ones (None: every state
        with `all`)."""
        if self.states:
            return self.states
        return None if include_all else tuple(s.value for s in JobState if not s.final)


def split_values(values: Sequence[str] | None, field: str) -> tuple[str, ...]:
    """Repeated and comma-separated values, in order, without blanks or repeats."""
    found: list[str] = []
    for value in values or ():
        for part in value.split(","):
            part = part.strip()
            if UNPRINTABLE.search(part):
                raise _invalid(field, "holds NUL or a lone surrogate", escaped(part)[:60])
            if len(part) > MAX_LENGTH:
                raise _invalid(field, f"at most {MAX_LENGTH} characters", part[:40] + "...")
            if part and part not in found:
                found.append(part)
    if len(found) > MAX_VALUES:
        raise _invalid(field, f"at most {MAX_VALUES} values", found[MAX_VALUES])
    return tuple(found)


def parse_filters(
    users: Sequence[str] | None, queues: Sequence[str] | None, states: Sequence[str] | None
) -> JobFilters:
    """The filters of the query; HTTPException 422 for a state that is not one."""
    wanted = split_values(states, "state")
    known = [s.value for s in JobState]
    for state in wanted:
        if state not in known:
            raise _invalid("state", f"must be one of {', '.join(known)}", state)
    return JobFilters(split_values(users, "user"), split_values(queues, "queue"), wanted)


def _invalid(field: str, message: str, value: str) -> HTTPException:
    return HTTPException(
        422,
        [{"loc": ["query", field], "type": "value_error", "msg": f"{value!r}: {message}",
          "input": value}],
    )
