"""Which waiting jobs the scheduler may see: those whose dependencies are met and whose
array is under its throttle. The control plane filters before each scheduling pass, as it
does for `notBefore`, so the scheduler never starts a job whose dependencies are not met.

A dependency on a job is, by kind (the target's state decides):

    after       met once the target has started (or ended without starting)
    afterok     met when it succeeded; never, once it ended otherwise
    afternotok  met when it ended other than succeeded; never, once it succeeded
    afterany    met once it ended

A job one of whose dependencies can never be met is cancelled with that reason; one whose
dependencies are all met forgets them (`waits_for` becomes null), so that a later change of
the targets (a requeue, a restart) does not hold it back again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suan.control.lifecycle import FINAL, JobState
from suan.control.models import JobRow
from suan.jobs.batch_syntax import KINDS
from suan.sched.decisions import WaitCode

Verdict = Literal["met", "wait", "never"]
FINAL_STATES = frozenset(state.value for state in FINAL)
HOLDING = tuple(state.value for state in JobState if state.holds_devices)
NAMED = 3
"""Jobs named in a reason before the rest are counted ("and 97 more")."""


def verdict(kind: str, state: str | None, started: bool) -> Verdict:
    """Whether a dependency of `kind` on a job now `state` (None: gone) is met, may yet be
    met, or never will be."""
    if state is None:
        return "never"
    ended = state in FINAL_STATES
    if kind == "after":
        return "met" if started or ended else "wait"
    if not ended:
        return "wait"
    if kind == "afterany":
        return "met"
    succeeded = state == JobState.SUCCEEDED
    return "met" if succeeded == (kind == "afterok") else "never"


@dataclass
class Gate:
    """One pass's filter: the `ready` rows, why the others wait (id -> reason, code), the
    jobs to cancel (id -> reason), and those whose dependencies have just been met."""

    ready: list[Any] = field(default_factory=list)
    held: dict[str, tuple[str, str]] = field(default_factory=dict)
    doomed: dict[str, str] = field(default_factory=dict)
    met: list[str] = field(default_factory=list)


def gate(session: Session, waiting: Sequence[Any]) -> Gate:
    """Split `waiting` rows (with `id`, `waits_for`, `array_id`, `array_index`,
    `array_limit`) by their dependencies, then by their arrays' throttles (lowest index
    first). `ready` keeps the order of `waiting`."""
    result = Gate()
    texts = {row.waits_for for row in waiting if row.waits_for}
    parsed = {text: json.loads(text) for text in texts}  # many jobs wait for the same jobs
    targets = _target_states(session, {job for pairs in parsed.values() for _, job in pairs})
    outcomes = {text: outcome(pairs, targets) for text, pairs in parsed.items()}
    throttled = []
    for row in waiting:
        if row.waits_for:
            answer, reason = outcomes[row.waits_for]
            if answer == "never":
                result.doomed[row.id] = reason
                continue
            if answer == "wait":
                result.held[row.id] = (reason, WaitCode.DEPENDENCY.value)
                continue
            result.met.append(row.id)
        if row.array_id and row.array_limit is not None:
            throttled.append(row)
        else:
            result.ready.append(row)
    if throttled:
        result.ready += _under_throttle(session, throttled, result)
        order = {row.id: at for at, row in enumerate(waiting)}
        result.ready.sort(key=lambda row: order[row.id])
    return result


def outcome(pairs: list[list[str]], targets: dict[str, tuple[str, bool]]) -> tuple[Verdict, str]:
    """Whether the dependencies `pairs` are all met, may yet be, or never will be, with the
    reason a job that waits or is cancelled gets."""
    found = [(kind, job, verdict(kind, *targets.get(job, (None, False)))) for kind, job in pairs]
    never = [(kind, job) for kind, job, answer in found if answer == "never"]
    if never:
        return "never", _never_reason(never[0], targets)
    unmet = [(kind, job) for kind, job, answer in found if answer == "wait"]
    if unmet:
        return "wait", waits_reason(unmet)
    return "met", ""


def _under_throttle(session: Session, members: list[Any], result: Gate) -> list[Any]:
    """The array members that may start now, lowest index first within each array's room;
    the others go to `result.held`."""
    free = _array_room(session, members)
    allowed = []
    for row in sorted(members, key=lambda r: r.array_index or 0):
        if free[row.array_id] > 0:
            free[row.array_id] -= 1
            allowed.append(row)
            continue
        noun = "member" if row.array_limit == 1 else "members"
        reason = f"array {row.array_id} runs at most {row.array_limit} {noun} at once"
        result.held[row.id] = (reason, WaitCode.ARRAY_LIMIT.value)
    return allowed


def waits_reason(unmet: Iterable[tuple[str, str]]) -> str:
    """"waits for job a to succeed; jobs b, c to end": the unmet dependencies by kind."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, job in unmet:
        by_kind[kind].append(job)
    parts = []
    for kind, jobs in by_kind.items():
        named = ", ".join(jobs[:NAMED]) + (f" and {len(jobs) - NAMED} more" if len(jobs) > NAMED
                                           else "")
        parts.append(f"{'job' if len(jobs) == 1 else 'jobs'} {named} to {KINDS[kind]}")
    return "waits for " + "; ".join(parts)


def _never_reason(dependency: tuple[str, str], targets: dict[str, tuple[str, bool]]) -> str:
    kind, job = dependency
    state = targets.get(job, (None, False))[0]
    what = f"job {job} {state}" if state else f"job {job} no longer exists"
    return f"its dependency can never be met: {what} ({kind}: it had to {KINDS[kind]})"


def _target_states(session: Session, ids: set[str]) -> dict[str, tuple[str, bool]]:
    """id -> (state, has started) of the jobs named."""
    found: dict[str, tuple[str, bool]] = {}
    listed = sorted(ids)
    for at in range(0, len(listed), 500):
        query = select(JobRow.id, JobRow.state, JobRow.attempt).where(
            JobRow.id.in_(listed[at : at + 500]))
        found.update((job, (state, attempt > 0)) for job, state, attempt in session.execute(query))
    return found


def _array_room(session: Session, waiting: Sequence[Any]) -> dict[str, int]:
    """Array id -> how many more of its members may start now (its throttle less those
    holding devices), for the throttled arrays among `waiting`."""
    limits = {row.array_id: row.array_limit for row in waiting
              if row.array_id and row.array_limit is not None}
    room = dict(limits)
    if not limits:
        return room
    query = (select(JobRow.array_id, func.count())
             .where(JobRow.array_id.in_(sorted(limits)), JobRow.state.in_(HOLDING))
             .group_by(JobRow.array_id))
    for array_id, holding in session.execute(query):
        room[array_id] = limits[array_id] - holding
    return room


def array_environment(row: Any) -> dict[str, str]:
    """What an array member's ranks see of its array: SUAN_ARRAY_ID, SUAN_ARRAY_INDEX and
    SUAN_ARRAY_COUNT (nothing for a job outside an array)."""
    if not row.array_id:
        return {}
    return {
        "SUAN_ARRAY_ID": row.array_id,
        "SUAN_ARRAY_INDEX": str(row.array_index),
        "SUAN_ARRAY_COUNT": str(row.array_count),
    }
