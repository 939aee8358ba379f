"""The REST API (FastAPI). Handlers read and write the store and wake the reconciler; they
never run the scheduler or touch processes themselves (logs aside, which are files).

Every request but `/healthz` and `/metrics` (counts only) carries `Authorization: Bearer
TOKEN`. Errors are JSON: 401 without a valid token, 403 when the caller may not do something,
404 for an unknown job, 409 for a request the job's state refuses, and 422 with the field path
(`loc`) for invalid input. The OpenAPI document is at `/openapi.json`.
"""

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import select
from sqlalchemy.orm import Session

import suan
from suan.control.audit import MUTATING, recent, record_call
from suan.control.auth import Identity, UserExists, can_manage, create_user, identify
from suan.control.config import ControlConfig
from suan.control.inventory import ClusterInventory
from suan.control.jobs import load_queues, rank_count, scheduler_job
from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.control.paging import BadCursor, job_page
from suan.control.store import Store, add_event
from suan.control.submit import Forbidden, submit
from suan.control.views import job_detail, job_summary, metrics_text, node_view, queue_view
from suan.errors import SpecError
from suan.exec import Executor

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
JobId = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9][-a-z0-9]*$")]


@dataclass
class Services:
    """What the handlers use: the store, the executor (for logs), the cluster as the engine
    reports it, the reconciler's wake-up."""

    store: Store
    executor: Executor
    config: ControlConfig
    inventory: ClusterInventory
    wake: Any = None


class SubmitRequest(BaseModel):
    """A spec file's text (Jobs and Queues, docs/job-spec.md) and where to run the jobs."""

    yaml: str = Field(min_length=1, max_length=1_000_000)
    workdir: str | None = Field(default=None, max_length=4096, pattern=r"^/[^\x00]*$")


class UserRequest(BaseModel):
    """A user to create, who gets a new token; `rotate` for an existing user revokes its old
    tokens (and sets `admin`) instead of being refused with 409."""

    name: str = Field(pattern=NAME_PATTERN)
    admin: StrictBool = False
    rotate: StrictBool = False


def _problem_json(error: SpecError) -> list[dict[str, Any]]:
    return [
        {
            "loc": ["body", "yaml", *[p for p in problem.path.split(".") if p]],
            "path": problem.path,
            "msg": problem.message,
            "allowed": problem.allowed,
            "type": "spec",
        }
        for problem in error.problems
    ]


def create_app(services: Services) -> FastAPI:
    """The FastAPI application over `services`."""
    app = FastAPI(
        title="Suan control plane",
        version=suan.__version__,
        description="Submit, follow and cancel gang-scheduled training jobs.",
    )
    bearer = HTTPBearer(auto_error=False)

    def session_dep():  # type: ignore[no-untyped-def]
        with services.store.plain_session() as session:
            yield session
            session.commit()

    SessionDep = Annotated[Session, Depends(session_dep)]

    def identity_dep(
        session: SessionDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Identity:
        if credentials is None:
            raise HTTPException(
                401,
                "missing token: send 'Authorization: Bearer TOKEN' "
                "(the CLI and SDK read SUAN_TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        identity = identify(session, credentials.credentials)
        if identity is None:
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        return identity

    Caller = Annotated[Identity, Depends(identity_dep)]

    def visible_job(session: Session, caller: Identity, job_id: str) -> JobRow:
        row = session.get(JobRow, job_id)
        if row is None:
            raise HTTPException(404, f"no job {job_id!r}")
        admins = {q.name: q.admins for q in load_queues(session)}
        if not can_manage(caller, row, admins.get(row.queue, ())):
            raise HTTPException(
                403,
                f"job {job_id} belongs to {row.user}; {caller.user} may "
                "manage only their own jobs and those of queues they administer",
            )
        return row

    pending_audit: set[asyncio.Task[None]] = set()

    @app.middleware("http")
    async def audit_log(request: Request, call_next: Any) -> Any:
        """Record every mutating call. The write runs beside the request, not inside it: the
        request's own transaction commits only after this returns (a wait here would lock
        SQLite against itself)."""
        response = await call_next(request)
        if request.method in MUTATING:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            task = asyncio.create_task(
                run_in_threadpool(
                    record_call,
                    services.store,
                    token,
                    request.method,
                    request.url.path,
                    response.status_code,
                )
            )
            pending_audit.add(task)
            task.add_done_callback(pending_audit.discard)
        return response

    @app.get("/v1/audit")
    def audit(
        caller: Caller,
        session: SessionDep,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> dict[str, Any]:
        """The newest mutating API calls (cluster admins only)."""
        if not caller.admin:
            raise HTTPException(
                403, f"only a cluster admin reads the audit log; {caller.user} is not one"
            )
        return {"calls": recent(session, limit)}

    @app.exception_handler(SpecError)
    async def spec_error(_request: Request, error: SpecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _problem_json(error)})

    @app.exception_handler(Forbidden)
    async def forbidden(_request: Request, error: Forbidden) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(error)})

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": suan.__version__}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(session: SessionDep) -> str:
        """Prometheus text format: jobs per state, devices in use and in total."""
        return metrics_text(session, services.inventory.current())

    @app.get("/v1/whoami")
    def whoami(caller: Caller) -> dict[str, Any]:
        return {"user": caller.user, "admin": caller.admin}

    @app.post("/v1/jobs", status_code=201)
    def submit_jobs(body: SubmitRequest, caller: Caller, session: SessionDep) -> dict[str, Any]:
        """Submit a spec file: its Jobs are queued, its Queues defined (admins only)."""
        result = submit(
            session,
            caller,
            body.yaml,
            body.workdir,
            services.config.home,
            services.config.checkpoint_roots,
        )
        session.commit()
        if services.wake:
            services.wake()
        return {"jobs": result.jobs, "queues": result.queues}

    @app.get("/v1/jobs")
    def list_jobs(
        caller: Caller,
        session: SessionDep,
        include_all: Annotated[bool, Query(alias="all")] = False,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        after: Annotated[str | None, Query(max_length=512)] = None,
    ) -> dict[str, Any]:
        """A page of the jobs the caller may see: live ones, or every one with `all=true`,
        newest first. `next` is the token for `after=` of the following page (null on the
        last) and `remaining` how many jobs follow this page (suan.control.paging)."""
        query = select(JobRow)
        live = None if include_all else tuple(s.value for s in JobState if not s.final)
        if not caller.admin:
            admin_of = [q.name for q in load_queues(session) if caller.user in q.admins]
            query = query.where((JobRow.user == caller.user) | JobRow.queue.in_(admin_of))
        try:
            page = job_page(session, query, limit, after, live)
        except BadCursor as exc:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["query", "after"],
                        "type": "value_error",
                        "msg": f"{exc}: pass the `next` of an earlier answer, or leave it out "
                        "for the first page",
                    }
                ],
            ) from None
        return {
            "jobs": [job_summary(row) for row in page.rows],
            "next": page.next,
            "remaining": page.remaining,
        }

    @app.get("/v1/jobs/{job_id}")
    def describe_job(job_id: JobId, caller: Caller, session: SessionDep) -> dict[str, Any]:
        return job_detail(session, visible_job(session, caller, job_id))

    @app.post("/v1/jobs/{job_id}/cancel", status_code=202)
    def cancel_job(job_id: JobId, caller: Caller, session: SessionDep) -> dict[str, Any]:
        """Ask for the job to stop: SIGTERM to every rank, SIGKILL after the grace period."""
        row = visible_job(session, caller, job_id)
        if JobState(row.state).final:
            raise HTTPException(409, f"job {job_id} already {row.state}")
        if not row.cancel_requested:
            row.cancel_requested = True
            add_event(session, row.id, "cancel-requested", f"cancel requested by {caller.user}")
        session.commit()
        if services.wake:
            services.wake()
        return {"id": row.id, "state": row.state, "cancel_requested": True}

    @app.get("/v1/jobs/{job_id}/logs")
    def job_logs(
        job_id: JobId,
        caller: Caller,
        session: SessionDep,
        rank: Annotated[int, Query(ge=0, le=100_000)] = 0,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=8 << 20)] = 1 << 20,
    ) -> dict[str, Any]:
        """A chunk of one rank's log from byte `offset`; follow with `next_offset`."""
        row = visible_job(session, caller, job_id)
        world = rank_count(scheduler_job(row))
        if rank >= world:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["query", "rank"],
                        "type": "value_error",
                        "msg": f"rank {rank} out of range: the job has "
                        f"{world} ranks (0 to {world - 1})",
                    }
                ],
            )
        data, next_offset = services.executor.logs(row.id, rank, offset, limit)
        return {
            "id": row.id,
            "rank": rank,
            "offset": offset,
            "next_offset": next_offset,
            "data": data.decode("utf-8", errors="replace"),
            "state": row.state,
            "final": JobState(row.state).final,
        }

    @app.get("/v1/nodes")
    def nodes(_caller: Caller, session: SessionDep) -> dict[str, Any]:
        holding = list(
            session.scalars(
                select(JobRow).where(
                    JobRow.state.in_([JobState.SCHEDULED.value, JobState.RUNNING.value])
                )
            )
        )
        cluster = services.inventory.current()
        views = [node_view(node, services.config.simulated, holding) for node in cluster]
        return {
            "engine": services.executor.engine,
            "error": services.inventory.error,
            "nodes": views,
        }

    @app.get("/v1/queues")
    def queues(_caller: Caller, session: SessionDep) -> dict[str, Any]:
        rows = list(
            session.scalars(
                select(JobRow).where(JobRow.state.in_([s.value for s in JobState if not s.final]))
            )
        )
        return {"queues": [queue_view(q, rows) for q in load_queues(session)]}

    @app.post("/v1/users", status_code=201)
    def add_user(body: UserRequest, caller: Caller, session: SessionDep) -> dict[str, Any]:
        """Create a user (cluster admins only) and return a new token for them, once."""
        if not caller.admin:
            raise HTTPException(
                403, f"only a cluster admin creates users; {caller.user} is not one"
            )
        try:
            token = create_user(session, body.name, body.admin, body.rotate)
        except UserExists as exc:
            raise HTTPException(409, str(exc)) from None
        return {"name": body.name, "admin": body.admin, "token": token}

    return app
