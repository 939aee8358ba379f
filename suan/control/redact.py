"""Other tenants' job ids out of the texts a caller reads.

The scheduler and the reconciler write reasons and events that name other jobs ("preempted
for JOB", "free devices are reserved for job JOB"). A caller who may not see such a job reads
`another job` in its place, so neither a listing nor a job's own history reveals that another
user's job exists or what it is called.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.auth import Identity, can_view
from suan.control.jobs import load_queues
from suan.control.models import JobRow

JOB_ID = re.compile(r"\b[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-[0-9a-f]{6}(?:-[0-9]{1,5})?\b")
"""What a job id looks like (`NAME-` and 6 hex digits, then `-INDEX` for an array member); a
match is a job only if one has it."""
OTHER_JOB = "another job"


def hidden_jobs(session: Session, caller: Identity, texts: list[str]) -> set[str]:
    """The ids named in `texts` of jobs that exist and that `caller` may not see."""
    named = {match for text in texts for match in JOB_ID.findall(text)}
    if caller.admin or not named:
        return set()
    queues = {queue.name: queue for queue in load_queues(session)}
    rows = session.scalars(select(JobRow).where(JobRow.id.in_(sorted(named))))
    return {row.id for row in rows if not can_view(caller, row, queues.get(row.queue))}


def scrub(text: str, hidden: set[str]) -> str:
    """`text` with every id in `hidden` replaced by `another job`."""
    if not hidden:
        return text
    return JOB_ID.sub(lambda m: OTHER_JOB if m.group(0) in hidden else m.group(0), text)


def redact_jobs(session: Session, caller: Identity, views: list[dict[str, Any]]) -> None:
    """Scrub, in place, the `reason`, the jobs waited for and event messages of job
    summaries or details."""
    texts = [view.get("reason") or "" for view in views]
    texts += [event["message"] for view in views for event in view.get("events", ())]
    texts += [wait["job"] for view in views for wait in view.get("waits_for", ())]
    hidden = hidden_jobs(session, caller, texts)
    if not hidden:
        return
    for view in views:
        view["reason"] = scrub(view.get("reason") or "", hidden)
        for event in view.get("events", ()):
            event["message"] = scrub(event["message"], hidden)
        for wait in view.get("waits_for", ()):
            wait["job"] = scrub(wait["job"], hidden)
