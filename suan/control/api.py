"""The REST API (FastAPI). Handlers read and write the store and wake the reconciler; they
never run the scheduler or touch processes themselves (logs aside, which are files).

Every request but `/healthz` carries `Authorization: Bearer TOKEN` (`/metrics` takes the
scrape token too, metrics_api.py). Errors are JSON: 401 without a valid token (unknown, revoked
or expired), 403 when the caller may not do something, 404 for an unknown job (or one the
caller may not see: the two look the same), 409 for a request the job's state refuses (or an
`Idempotency-Key` reused for another submission, see idempotency.py), and 422 with the field
path (`loc`) for invalid input; every route declares the ones it may give (api_errors.py). The
OpenAPI document is at `/openapi.json`.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, Field, StrictBool
from sqlalchemy import select, update
from sqlalchemy.orm import Session

import suan
from suan.control import idempotency
from suan.control.api_errors import SafeJSONResponse, error_responses, install_error_handlers
from suan.control.audit import MUTATING, recent, record_call
from suan.control.auth import (
    Identity,
    Unauthenticated,
    UserExists,
    authenticate,
    can_manage,
    can_view,
    create_user,
    views_all_jobs,
)
from suan.control.batch_views import array_members, array_view, request_cancel
from suan.control.bodies import StrictBody
from suan.control.config import ControlConfig
from suan.control.goodput_api import goodput_detail, goodput_router
from suan.control.holds_api import holds_router
from suan.control.instance import INSTANCE
from suan.control.inventory import ClusterInventory
from suan.control.job_filters import parse_filters
from suan.control.jobs import load_queues, row_rank_count
from suan.control.lifecycle import JobState
from suan.control.metrics_api import metrics_router
from suan.control.models import JobRow, TokenRow
from suan.control.nodes_api import node_health_views, node_router, sync_operator_verdicts
from suan.control.paging import BadCursor, job_page
from suan.control.redact import redact_jobs
from suan.control.snapshot import export_document
from suan.control.store import Store, add_event
from suan.control.submit import Forbidden, submit
from suan.control.tokens_api import token_router
from suan.control.views import job_detail, job_summary, node_view, queue_view
from suan.errors import UNPRINTABLE, SpecError
from suan.exec import Executor
from suan.web.router import web_router
from suan.web.sessions import COOKIE as SESSION_COOKIE

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
JobId = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9][-a-z0-9]*$")]
LAST_USED_EVERY_S = 60.0
HIDDEN_JOB = "hidden"
SNAPSHOT_WAIT_S = 30.0
"""How long `/v1/snapshot` waits for the reconciler's next scheduling pass."""
MAX_LOG_OFFSET = (1 << 53) - 1
"""The largest log offset a client may ask for: 8 PiB, beyond any log, and exact in every
JSON reader."""


def _printable(value: str | None) -> str | None:
    """Refuse text holding NUL or lone surrogates (nothing downstream can store or run it)."""
    if value is not None and UNPRINTABLE.search(value):
        raise ValueError("contains a NUL character or an unpaired surrogate")
    return value


@dataclass
class Services:
    """What the handlers use: the store, the executor (for logs), the cluster as the engine
    reports it, the reconciler's wake-up."""

    store: Store
    executor: Executor
    config: ControlConfig
    inventory: ClusterInventory
    wake: Any = None
    leader: Any = None
    next_cycle: Any = None
    metrics: Any = None  # the server's ControlMetrics (suan.control.metrics)
    metrics_token: str | None = None  # the scrape token of /metrics


class SubmitRequest(StrictBody):
    """A spec file's text (Jobs and Queues, docs/job-spec.md) and where to run the jobs."""

    yaml: Annotated[str, AfterValidator(_printable)] = Field(min_length=1, max_length=1_000_000)
    workdir: Annotated[str | None, AfterValidator(_printable)] = Field(
        default=None, max_length=4096, pattern=r"^/[^\x00]*$"
    )


class SubmittedJob(BaseModel):
    """A job a submission stored: its id (for every later call), name and queue."""

    id: str
    name: str
    queue: str
    array: str | None = None


class SubmitAnswer(BaseModel):
    """What a submission stored: job ids in file order, and the queues it defined."""

    jobs: list[SubmittedJob]
    queues: list[str]


class UserRequest(StrictBody):
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
        default_response_class=SafeJSONResponse,
        docs_url=None,  # served offline by suan.web
        redoc_url=None,
    )
    install_error_handlers(app)
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
        try:
            identity = authenticate(session, credentials.credentials)
        except Unauthenticated as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        note_use(identity)
        return identity

    Caller = Annotated[Identity, Depends(identity_dep)]
    noted: dict[str, float] = {}

    def note_use(identity: Identity) -> None:
        """Record when a token was last used, at most once a minute per token (in a short
        transaction of its own, so a read-only request holds no write lock)."""
        now = time.time()
        if identity.token_id is None or now - noted.get(identity.token_id, 0.0) < LAST_USED_EVERY_S:
            return
        noted[identity.token_id] = now
        with services.store.session() as own:
            own.execute(
                update(TokenRow).where(TokenRow.id == identity.token_id).values(last_used_at=now)
            )

    def visible_job(
        session: Session, caller: Identity, job_id: str, manage: bool = False
    ) -> JobRow:
        """The job, if the caller may see it (and, with `manage`, cancel it). A job the caller
        may not see is a 404 exactly like a missing one; one they see but may not manage, 403."""
        row = session.get(JobRow, job_id)
        queue = None if row is None else {q.name: q for q in load_queues(session)}.get(row.queue)
        if row is None or not can_view(caller, row, queue):
            raise HTTPException(404, f"no job {job_id!r}")
        if manage and not can_manage(caller, row, queue.admins if queue else ()):
            raise HTTPException(
                403,
                f"{caller.user} may view but not cancel job {job_id} (a viewer of queue "
                f"{row.queue}); its owner, the queue's admins and cluster admins may",
            )
        return row

    def visible_queues(session: Session, caller: Identity) -> list[str]:
        """Queues all of whose jobs the caller sees (as their admin or viewer)."""
        return [q.name for q in load_queues(session) if views_all_jobs(caller, q)]

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
                    request.cookies.get(SESSION_COOKIE),
                )
            )
            pending_audit.add(task)
            task.add_done_callback(pending_audit.discard)
        return response

    @app.get("/v1/audit", responses=error_responses(401, 403, 422))
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
        return SafeJSONResponse(status_code=422, content={"detail": _problem_json(error)})

    @app.exception_handler(Forbidden)
    async def forbidden(_request: Request, error: Forbidden) -> JSONResponse:
        return SafeJSONResponse(status_code=403, content={"detail": str(error)})

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": suan.__version__, "instance": INSTANCE}

    @app.get("/v1/leader", responses=error_responses(401))
    def leader(_caller: Caller) -> dict[str, Any]:
        """Which server drives the reconciler (the lease's holder and epoch), and whether it
        is the one answering; the others stand by and serve the API."""
        if services.leader is None:
            return {"leader": None, "epoch": 0, "leading": True}
        return services.leader()

    @app.get("/v1/snapshot", responses=error_responses(401, 403, 409, 503))
    def snapshot(caller: Caller) -> dict[str, Any]:
        """The inputs of the reconciler's next scheduling cycle, and the decisions it made
        from them (cluster admins only): a scheduler state document (docs/schedule-state.md)
        that `suan schedule --state` replays offline. Waits for the next pass (a tick)."""
        if not caller.admin:
            raise HTTPException(
                403, f"only a cluster admin exports the scheduler's state; {caller.user} is not one"
            )
        lease = services.leader() if services.leader is not None else {"leading": True}
        if services.next_cycle is None or not lease.get("leading"):
            raise HTTPException(
                409,
                f"this server does not run the scheduler now (the leader is "
                f"{lease.get('leader')}); export from the leading server",
            )
        try:
            record = services.next_cycle(SNAPSHOT_WAIT_S)
        except TimeoutError:
            raise HTTPException(
                503, f"no scheduling pass ran within {SNAPSHOT_WAIT_S:g}s; try again"
            ) from None
        return export_document(record, services.executor.engine)

    @app.get("/v1/whoami", responses=error_responses(401))
    def whoami(caller: Caller) -> dict[str, Any]:
        return {"user": caller.user, "admin": caller.admin}

    @app.post(
        "/v1/jobs",
        status_code=201,
        response_model=SubmitAnswer,
        response_model_exclude_none=True,  # `array` only for array members, as replays store it
        responses={
            201: {
                "description": "The jobs and queues submitted (again, for a replayed key).",
                "headers": {
                    idempotency.REPLAYED_HEADER: {
                        "description": "`true` when this answers an earlier request with the "
                        "same Idempotency-Key",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                },
            },
            **error_responses(400, 401, 403, 409, 422),
        },
    )
    def submit_jobs(
        body: SubmitRequest,
        caller: Caller,
        session: SessionDep,
        key: Annotated[
            str | None,
            Header(
                alias=idempotency.HEADER,
                pattern=idempotency.KEY_PATTERN,
                description="Makes a retry safe: the same key and request within 24 hours "
                "answer the first submission again instead of submitting twice.",
            ),
        ] = None,
    ) -> Any:
        """Submit a spec file: its Jobs are queued, its Queues defined (admins only)."""
        if key is not None:
            return submit_once(body, caller, session, key)
        return submit_now(body, caller, session)

    def submit_once(body: SubmitRequest, caller: Identity, session: Session, key: str) -> Any:
        """`submit_now` at most once per (caller, key): later requests replay its answer."""
        digest = idempotency.request_digest(body.yaml, body.workdir)
        now = time.time()
        stored = keyed_replay(session, caller.user, key, digest, now)
        if stored is not None:
            return stored
        if not idempotency.claim(session, caller.user, key, digest, now):
            stored = keyed_replay(session, caller.user, key, digest, now)
            if stored is not None:
                return stored
            raise HTTPException(409, f"a submission with Idempotency-Key {key!r} is under way")
        answer = submit_now(body, caller, session, commit=False)
        idempotency.remember(session, caller.user, key, 201, answer)
        session.commit()
        if services.wake:
            services.wake()
        return answer

    def keyed_replay(
        session: Session, user: str, key: str, digest: str, now: float
    ) -> SafeJSONResponse | None:
        try:
            stored = idempotency.replay(session, user, key, digest, now)
        except idempotency.KeyReused as exc:
            raise HTTPException(409, str(exc)) from None
        if stored is None:
            return None
        return SafeJSONResponse(
            stored.body, status_code=stored.status, headers={idempotency.REPLAYED_HEADER: "true"}
        )

    def submit_now(
        body: SubmitRequest, caller: Identity, session: Session, commit: bool = True
    ) -> dict[str, Any]:
        result = submit(
            session,
            caller,
            body.yaml,
            body.workdir,
            services.config.home,
            services.config.checkpoint_roots,
        )
        if commit:
            session.commit()
            if services.wake:
                services.wake()
        return {"jobs": result.jobs, "queues": result.queues}

    @app.get("/v1/jobs", responses=error_responses(401, 422))
    def list_jobs(
        caller: Caller,
        session: SessionDep,
        include_all: Annotated[bool, Query(alias="all")] = False,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        after: Annotated[str | None, Query(max_length=512)] = None,
        user: Annotated[list[str] | None, Query()] = None,
        queue: Annotated[list[str] | None, Query()] = None,
        state: Annotated[list[str] | None, Query()] = None,
        array: Annotated[str | None, Query(max_length=80, pattern=r"^[a-z0-9][-a-z0-9]*$")] = None,
    ) -> dict[str, Any]:
        """A page of the jobs the caller may see: live ones, or every one with `all=true`,
        newest first, of the `user`s, `queue`s and `state`s given (suan.control.job_filters).
        `next` is the token for `after=` of the following page (null on the last) and
        `remaining` how many jobs follow this page (suan.control.paging). `array` keeps the
        members of that array, finished ones too."""
        filters = parse_filters(user, queue, state)
        query = filters.apply(select(JobRow))
        live = filters.paged_states(include_all or array is not None)
        if array is not None:
            query = query.where(JobRow.array_id == array)
        if not caller.admin:
            seen = visible_queues(session, caller)
            query = query.where((JobRow.user == caller.user) | JobRow.queue.in_(seen))
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
        listed = [job_summary(row) for row in page.rows]
        redact_jobs(session, caller, listed)
        return {
            "jobs": listed,
            "next": page.next,
            "remaining": page.remaining,
        }

    @app.get("/v1/jobs/{job_id}", responses=error_responses(401, 403, 404, 422))
    def describe_job(job_id: JobId, caller: Caller, session: SessionDep) -> dict[str, Any]:
        """One job's detail; for an array id, the array: its members and counts per state."""
        if session.get(JobRow, job_id) is None and array_members(session, job_id):
            members = array_members(session, job_id)
            for member in members:
                visible_job(session, caller, member.id)
            view = array_view(job_id, members)
            redact_jobs(session, caller, view["members"])
            return view
        row = visible_job(session, caller, job_id)
        detail = {**job_detail(session, row), **goodput_detail(session, row, services)}
        redact_jobs(session, caller, [detail])
        return detail

    @app.post(
        "/v1/jobs/{job_id}/cancel",
        status_code=202,
        responses=error_responses(401, 403, 404, 409, 422),
    )
    def cancel_job(job_id: JobId, caller: Caller, session: SessionDep) -> dict[str, Any]:
        """Ask for the job to stop: SIGTERM to every rank, SIGKILL after the grace period.
        An array id cancels every member that has not ended."""
        if session.get(JobRow, job_id) is None and array_members(session, job_id):
            return cancel_array(job_id, caller, session)
        row = visible_job(session, caller, job_id, manage=True)
        if JobState(row.state).final:
            raise HTTPException(409, f"job {job_id} already {row.state}")
        if not row.cancel_requested:
            row.cancel_requested = True
            add_event(session, row.id, "cancel-requested", f"cancel requested by {caller.user}")
        session.commit()
        if services.wake:
            services.wake()
        return {"id": row.id, "state": row.state, "cancel_requested": True}

    def cancel_array(array_id: str, caller: Identity, session: Session) -> dict[str, Any]:
        members = array_members(session, array_id)
        for member in members:
            visible_job(session, caller, member.id, manage=True)
        asked = request_cancel(session, members, caller.user)
        session.commit()
        if services.wake:
            services.wake()
        return {"id": array_id, "array": True, "cancel_requested": asked}

    @app.get("/v1/jobs/{job_id}/logs", responses=error_responses(401, 403, 404, 422))
    def job_logs(
        job_id: JobId,
        caller: Caller,
        session: SessionDep,
        rank: Annotated[int, Query(ge=0, le=100_000)] = 0,
        offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=1, le=8 << 20)] = 1 << 20,
    ) -> dict[str, Any]:
        """A chunk of one rank's log from byte `offset`; follow with `next_offset`."""
        row = visible_job(session, caller, job_id)
        world = row_rank_count(session, row)
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

    @app.get("/v1/nodes", responses=error_responses(401))
    def nodes(caller: Caller, session: SessionDep) -> dict[str, Any]:
        """Nodes and their devices in use. Devices held by jobs the caller may not see are
        marked `hidden` (and counted in `hidden`), not named."""
        holding = list(
            session.scalars(
                select(JobRow).where(
                    JobRow.state.in_([JobState.SCHEDULED.value, JobState.RUNNING.value])
                )
            )
        )
        sync_operator_verdicts(session, services.inventory)
        cluster = services.inventory.current()
        shown = None
        if not caller.admin:
            queues = {q.name: q for q in load_queues(session)}
            shown = {r.id for r in holding if can_view(caller, r, queues.get(r.queue))}
        views = [
            node_view(node, services.config.simulated, holding, shown, HIDDEN_JOB)
            for node in cluster
        ]
        return {
            "engine": services.executor.engine,
            "error": services.inventory.error,
            "nodes": node_health_views(session, services.inventory, views, holding),
        }

    @app.get("/v1/queues", responses=error_responses(401))
    def queues(_caller: Caller, session: SessionDep) -> dict[str, Any]:
        """Every queue: its spec (quotas, admins, submitters, viewers) and counts of its jobs
        and devices in use; never a job id or a job's user."""
        rows = list(
            session.scalars(
                select(JobRow).where(JobRow.state.in_([s.value for s in JobState if not s.final]))
            )
        )
        return {"queues": [queue_view(q, rows) for q in load_queues(session)]}

    @app.post(
        "/v1/users", status_code=201, responses=error_responses(400, 401, 403, 409, 422)
    )
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

    app.include_router(goodput_router(Caller, SessionDep, JobId, visible_job, services))
    app.include_router(token_router(Caller, SessionDep))
    app.include_router(holds_router(Caller, SessionDep, JobId, visible_job, services.wake))
    app.include_router(metrics_router(services))
    app.include_router(node_router(Caller, SessionDep, services.inventory, services.wake))
    app.include_router(web_router(app.title, services, SessionDep, visible_job))
    return app
