"""The dashboard's routes, under `/ui/` on the API's own port.

    GET  /ui/login              the login form (an API token)
    POST /ui/login              token -> session cookie (HttpOnly, SameSite=Strict)
    POST /ui/logout             ends the session
    GET  /ui/cluster            racks by block; one block's nodes, devices by domain and state
    GET  /ui/queues             quotas, use and borrowing per type, fair share, waiting jobs
    GET  /ui/jobs               the job list (filters: user, queue, state, reason)
    GET  /ui/jobs/{id}          a job: reason, ranks, events, checkpoints, goodput
    GET  /ui/jobs/{id}/logs     a live tail of one rank's log (?rank=N)
    GET  /ui/jobs/{id}/log      a chunk of that log as JSON (what the tail polls)
    POST /ui/jobs/{id}/cancel   cancel the job (as POST /v1/jobs/{id}/cancel)
    POST /ui/jobs/{id}/hold, /release   hold or release a waiting job (as the API's routes)
    POST /ui/nodes/{name}/cordon, /uncordon   cluster admins only
    GET  /ui/sim, POST /ui/sim  upload a `sim replay` / `sim pack` JSON document, see it

Every page needs a session (otherwise a redirect to the login form); every POST but the login
needs the session's CSRF token in the form's `csrf` field and, when the browser sends one, an
`Origin` of this server (otherwise 403). A page shows what the REST API shows its caller.
"""

import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile as StarletteUpload

from suan.control import holds
from suan.control.auth import Unauthenticated
from suan.control.jobs import row_rank_count
from suan.control.lifecycle import JobState
from suan.control.overrides import Action, clear_override, set_override
from suan.control.redact import redact_jobs
from suan.control.store import add_event
from suan.control.views import job_detail, job_summary
from suan.sched.decisions import WaitCode
from suan.web import data
from suan.web.charts import bar_chart
from suan.web.sessions import (
    COOKIE,
    WebLogin,
    close_session,
    csrf_matches,
    find_login,
    open_session,
)
from suan.web.simulator import MAX_UPLOAD_BYTES, BadDocument, parse_document, sim_report

HERE = Path(__file__).parent
STATIC = {"style.css": "text/css", "tail.js": "text/javascript"}
LOG_CHUNK = 256 << 10
"""Bytes of log one poll of the live tail fetches: a screenful many times over, small enough
that a burst of output reaches the browser in a few polls."""
FORM_OVERHEAD = 64 << 10
"""Bytes of a multipart upload besides the file: boundaries, headers, the CSRF field."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


TEMPLATES.filters["when"] = _when
TEMPLATES.filters["number"] = _number


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The template `name` with `context`, with the dashboard's security headers."""
    html = TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _login_redirect(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(303, "log in first",
                         headers={"Location": f"/ui/login?next={quote(target, safe='')}"})


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this server only."""
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/cluster"


def web_pages(services: Any, session_dep: Any, visible_job: Any) -> APIRouter:
    """The dashboard's routes over the API's `services`, its per-request store session and its
    visibility rule for jobs (`visible_job(session, caller, id, manage=False)`)."""
    router = APIRouter(include_in_schema=False)

    def login_dep(request: Request, session: session_dep) -> WebLogin:
        try:
            return find_login(session, request.cookies.get(COOKIE))
        except Unauthenticated:
            raise _login_redirect(request) from None

    Login = Annotated[WebLogin, Depends(login_dep)]

    def checked(request: Request, login: WebLogin, csrf: str | None) -> None:
        if not _same_origin(request) or not csrf_matches(login, csrf):
            raise HTTPException(403, "the form's CSRF token is missing or wrong, or it came "
                                "from another site; reload the page and try again")

    def page(name: str, login: WebLogin, **context: Any) -> HTMLResponse:
        return render(name, user=login.identity.user, admin=login.identity.admin,
                      csrf=login.csrf, **context)

    @router.get("/")
    @router.get("/ui")
    @router.get("/ui/")
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/cluster", status_code=303)

    @router.get("/ui/static/{asset}")
    def static(asset: str) -> FileResponse:
        if asset not in STATIC:
            raise HTTPException(404, f"no asset {asset!r}")
        return FileResponse(HERE / "static" / asset, media_type=STATIC[asset],
                            headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/ui/login")
    def login_form(next_page: Annotated[str | None, Query(alias="next")] = None,
                   error: str = "") -> HTMLResponse:
        return render("login.html", user=None, next=_safe_next(next_page), error=error)

    @router.post("/ui/login")
    def log_in(request: Request, session: session_dep,
               token: Annotated[str, Form(max_length=200)],
               next_page: Annotated[str, Form(alias="next", max_length=2000)] = "") -> Response:
        if not _same_origin(request):
            raise HTTPException(403, "a login form of another site")
        try:
            opened = open_session(session, token)
        except Unauthenticated as exc:
            return render("login.html", status=401, user=None, next=_safe_next(next_page),
                          error=str(exc))
        session.commit()
        answer = RedirectResponse(_safe_next(next_page), status_code=303)
        answer.set_cookie(COOKIE, opened.cookie, max_age=opened.max_age_s, path="/",
                          httponly=True, samesite="strict")
        return answer

    @router.post("/ui/logout")
    def log_out(request: Request, login: Login, session: session_dep,
                csrf: Annotated[str | None, Form()] = None) -> Response:
        checked(request, login, csrf)
        close_session(session, request.cookies.get(COOKIE))
        session.commit()
        answer = RedirectResponse("/ui/login", status_code=303)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    @router.get("/ui/cluster")
    def cluster(login: Login, session: session_dep,
                block: Annotated[str, Query(max_length=255)] = "") -> HTMLResponse:
        shown = data.cluster_page(session, login.identity, services.inventory,
                                  services.executor.engine, services.config.simulated, block)
        return page("cluster.html", login, tab="cluster", **shown)

    @router.get("/ui/queues")
    def queues(login: Login, session: session_dep) -> HTMLResponse:
        shown = data.queues_page(session, services.inventory.current())
        chart = bar_chart(
            "devices in use (bars) against guarantee (ticks)",
            {q["name"]: q["used"]["accelerators"] for q in shown["queues"]},
            "devices",
            {q["name"]: q["guaranteed"]["accelerators"] for q in shown["queues"]
             if "accelerators" in q["guaranteed"]},
        )
        return page("queues.html", login, tab="queues", chart=chart, **shown)

    @router.get("/ui/jobs")
    def jobs(login: Login, session: session_dep,
             user: Annotated[str, Query(max_length=63)] = "",
             queue: Annotated[str, Query(max_length=63)] = "",
             state: Annotated[str, Query(max_length=32)] = "",
             reason: Annotated[str, Query(max_length=32)] = "") -> HTMLResponse:
        wanted = data.JobFilter(user, queue, state, reason)
        found = data.job_list(session, login.identity, wanted)
        listed = [job_summary(row) for row in found["rows"]]
        redact_jobs(session, login.identity, listed)
        return page("jobs.html", login, tab="jobs", jobs=listed, total=found["total"],
                    shown=data.JOBS_SHOWN, wanted=wanted, states=[s.value for s in JobState],
                    reasons=[c.value for c in WaitCode])

    def described(session: Session, login: WebLogin, job_id: str) -> dict[str, Any]:
        from suan.control.goodput_api import goodput_detail

        row = visible_job(session, login.identity, job_id)
        detail = {**job_detail(session, row), **goodput_detail(session, row, services)}
        redact_jobs(session, login.identity, [detail])
        return detail

    def refused(login: WebLogin, exc: HTTPException) -> HTMLResponse:
        return page("error.html", login, status=exc.status_code, code=exc.status_code, tab="",
                    message=str(exc.detail))

    @router.get("/ui/jobs/{job_id}")
    def job(job_id: str, login: Login, session: session_dep) -> HTMLResponse:
        try:
            detail = described(session, login, job_id)
        except HTTPException as exc:
            return refused(login, exc)
        breakdown = (detail.get("goodput") or {}).get("breakdown") or {}
        chart = bar_chart("where the job's wall time went", breakdown, "seconds")
        return page("job.html", login, tab="jobs", job=detail, chart=chart,
                    may_cancel=may_cancel(session, login, job_id),
                    words=data.reason_words(detail["reason_code"]),
                    final=JobState(detail["state"]).final,
                    waiting=JobState(detail["state"]).waiting)

    def may_cancel(session: Session, login: WebLogin, job_id: str) -> bool:
        """Whether the caller may cancel the job (its owner, its queue's admins, admins; not a
        queue's viewers), so the page offers the button only to them."""
        try:
            visible_job(session, login.identity, job_id, manage=True)
        except HTTPException:
            return False
        return True

    @router.get("/ui/jobs/{job_id}/logs")
    def log_page(job_id: str, login: Login, session: session_dep,
                 rank: Annotated[int, Query(ge=0, le=100_000)] = 0) -> HTMLResponse:
        try:
            detail = described(session, login, job_id)
        except HTTPException as exc:
            return refused(login, exc)
        return page("log.html", login, tab="jobs", job=detail, rank=rank)

    @router.get("/ui/jobs/{job_id}/log")
    def log_chunk(job_id: str, login: Login, session: session_dep,
                  rank: Annotated[int, Query(ge=0, le=100_000)] = 0,
                  offset: Annotated[int, Query(ge=0, le=(1 << 53) - 1)] = 0) -> dict[str, Any]:
        row = visible_job(session, login.identity, job_id)
        if rank >= row_rank_count(session, row):
            raise HTTPException(404, f"job {job_id} has no rank {rank}")
        chunk, next_offset = services.executor.logs(row.id, rank, offset, LOG_CHUNK)
        return {"data": chunk.decode("utf-8", errors="replace"), "next_offset": next_offset,
                "state": row.state, "final": JobState(row.state).final}

    @router.post("/ui/jobs/{job_id}/cancel")
    def cancel(request: Request, job_id: str, login: Login, session: session_dep,
               csrf: Annotated[str | None, Form()] = None) -> Response:
        try:
            checked(request, login, csrf)
            row = visible_job(session, login.identity, job_id, manage=True)
        except HTTPException as exc:
            return refused(login, exc)
        if not JobState(row.state).final and not row.cancel_requested:
            row.cancel_requested = True
            add_event(session, row.id, "cancel-requested",
                      f"cancel requested by {login.identity.user} (dashboard)")
            session.commit()
            if services.wake:
                services.wake()
        return RedirectResponse(f"/ui/jobs/{row.id}", status_code=303)

    def held(request: Request, job_id: str, login: WebLogin, session: Session,
             csrf: str | None, change: Any) -> Response:
        """Hold or release the job (`change`: `suan.control.holds`), then show it again."""
        try:
            checked(request, login, csrf)
            row = visible_job(session, login.identity, job_id, manage=True)
            change(session, row, login.identity.user)
        except HTTPException as exc:
            return refused(login, exc)
        except holds.StateConflict as exc:
            return refused(login, HTTPException(409, str(exc)))
        session.commit()
        if services.wake:
            services.wake()
        return RedirectResponse(f"/ui/jobs/{row.id}", status_code=303)

    @router.post("/ui/jobs/{job_id}/hold")
    def hold(request: Request, job_id: str, login: Login, session: session_dep,
             csrf: Annotated[str | None, Form()] = None) -> Response:
        return held(request, job_id, login, session, csrf, holds.hold)

    @router.post("/ui/jobs/{job_id}/release")
    def release(request: Request, job_id: str, login: Login, session: session_dep,
                csrf: Annotated[str | None, Form()] = None) -> Response:
        return held(request, job_id, login, session, csrf, holds.release)

    def operator(request: Request, login: WebLogin, csrf: str | None, name: str) -> None:
        checked(request, login, csrf)
        if not login.identity.admin:
            raise HTTPException(403, f"only a cluster admin cordons nodes; "
                                f"{login.identity.user} is not one")
        if name not in services.inventory.current().index:
            raise HTTPException(404, f"no node {name!r}")

    @router.post("/ui/nodes/{name}/cordon")
    def cordon(request: Request, name: str, login: Login, session: session_dep,
               csrf: Annotated[str | None, Form()] = None,
               reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
        try:
            operator(request, login, csrf, name)
        except HTTPException as exc:
            return refused(login, exc)
        set_override(session, name, Action.CORDON, reason.strip() or "cordoned from the "
                     "dashboard", login.identity.user, time.time())
        return node_changed(session)

    @router.post("/ui/nodes/{name}/uncordon")
    def uncordon(request: Request, name: str, login: Login, session: session_dep,
                 csrf: Annotated[str | None, Form()] = None) -> Response:
        try:
            operator(request, login, csrf, name)
        except HTTPException as exc:
            return refused(login, exc)
        clear_override(session, name)
        return node_changed(session)

    def node_changed(session: Session) -> Response:
        from suan.control.nodes_api import sync_operator_verdicts

        session.commit()
        sync_operator_verdicts(session, services.inventory)
        if services.wake:
            services.wake()
        return RedirectResponse("/ui/cluster", status_code=303)

    @router.get("/ui/sim")
    def sim_form(login: Login) -> HTMLResponse:
        return page("sim.html", login, tab="sim", report=None, error="",
                    limit_mib=MAX_UPLOAD_BYTES >> 20)

    @router.post("/ui/sim")
    async def sim_upload(request: Request, login: Login) -> HTMLResponse:
        def failed(status: int, error: str) -> HTMLResponse:
            return page("sim.html", login, status=status, tab="sim", report=None, error=error,
                        limit_mib=MAX_UPLOAD_BYTES >> 20)

        size = request.headers.get("content-length", "")
        if not size.isdigit():
            return failed(411, "the upload must say its length (Content-Length)")
        if int(size) > MAX_UPLOAD_BYTES + FORM_OVERHEAD:
            return failed(413, f"the file is larger than {MAX_UPLOAD_BYTES >> 20} MiB")
        form = await request.form(max_files=1, max_fields=2)
        checked(request, login, str(form.get("csrf") or ""))
        document = form.get("document")
        if not isinstance(document, StarletteUpload):
            return failed(422, "choose a JSON file to upload (field `document`)")
        try:
            report = sim_report(parse_document(await document.read(MAX_UPLOAD_BYTES + 1)))
        except BadDocument as exc:
            return failed(422, str(exc))
        return page("sim.html", login, tab="sim", report=report, error="",
                    limit_mib=MAX_UPLOAD_BYTES >> 20, filename=document.filename or "")

    return router
