"""The goodput routes of the REST API (docs/goodput.md).

    GET /v1/jobs/{id}/goodput                  -> one job's breakdown, goodput and checkpoint advice
    GET /v1/goodput?queue=Q&since=T&limit=N    -> {"jobs": [...], "total": {...}}

A job the caller may not see is a 404, as on every job route; the listing holds the jobs the
caller may see (their own, those of queues they view, every one for a cluster admin) that were
live at or after `since` (seconds since the epoch; default: every job), newest first.
"""

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.api_errors import error_responses
from suan.control.auth import Identity, views_all_jobs
from suan.control.checkpoint_advice import advise
from suan.control.jobs import load_queues
from suan.control.models import JobRow
from suan.goodput.store import job_goodput, total

JOB_ID_PATTERN = r"^[a-z0-9][-a-z0-9]*$"


def goodput_detail(session: Session, row: JobRow, services: Any) -> dict[str, Any]:
    """The `goodput` and `checkpoint` parts of a job's description."""
    cluster = services.inventory.current()
    now = time.time()
    advice = advise(session, row, cluster, services.config.checkpoint_write_gbs, now=now)
    return {
        "goodput": job_goodput(session, row, now, cluster),
        "checkpoint": advice.as_dict(),
    }


def goodput_router(
    caller_dep: Any,
    session_dep: Any,
    job_id_type: Any,
    visible_job: Callable[[Session, Identity, str], JobRow],
    services: Any,
) -> APIRouter:
    """The goodput routes, with the app's dependencies and its visibility rule."""
    router = APIRouter()

    @router.get("/v1/jobs/{job_id}/goodput", responses=error_responses(401, 404, 422))
    def job_goodput_route(
        job_id: job_id_type, caller: caller_dep, session: session_dep
    ) -> dict[str, Any]:
        """Where the job's wall time went, its goodput factors and its checkpoint advice."""
        row = visible_job(session, caller, job_id)
        detail = goodput_detail(session, row, services)
        return {**detail["goodput"], "checkpoint": detail["checkpoint"]}

    @router.get("/v1/goodput", responses=error_responses(401, 422))
    def goodput_listing(
        caller: caller_dep,
        session: session_dep,
        queue: Annotated[str | None, Query(max_length=63)] = None,
        since: Annotated[float | None, Query(ge=0, le=1e12)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> dict[str, Any]:
        """Per-job goodput rows and the device-time weighted total over them."""
        query = select(JobRow).order_by(JobRow.submit_time.desc(), JobRow.id).limit(limit)
        if queue is not None:
            query = query.where(JobRow.queue == queue)
        if since is not None:
            query = query.where((JobRow.end_time.is_(None)) | (JobRow.end_time >= since))
        if not caller.admin:
            seen = [q.name for q in load_queues(session) if views_all_jobs(caller, q)]
            query = query.where((JobRow.user == caller.user) | JobRow.queue.in_(seen))
        now = time.time()
        cluster = services.inventory.current()
        rows = [job_goodput(session, row, now, cluster) for row in session.scalars(query)]
        return {"jobs": rows, "total": total(rows)}

    return router
