"""The hold, release and requeue routes of the REST API (`suan.control.holds`).

    POST /v1/jobs/{job_id}/hold      -> {"id", "state", "held_by"}
    POST /v1/jobs/{job_id}/release   -> {"id", "state", "held_by"}
    POST /v1/jobs/{job_id}/requeue   -> {"id", "state", "requeue_requested": true}

Who may: as for cancel, the job's owner, its queue's admins and cluster admins (a viewer gets
403; a job the caller may not see, 404). A request the job's state does not allow is a 409
that says the state.
"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session

from suan.control import holds
from suan.control.api_errors import error_responses
from suan.control.auth import Identity
from suan.control.models import JobRow


def holds_router(caller_dep: Any, session_dep: Any, job_id_type: Any,
                 visible_job: Callable[..., JobRow], wake: Callable[[], None] | None
                 ) -> APIRouter:
    """The routes, with the app's dependencies (caller, session, job id: Annotated types), its
    `visible_job(session, caller, job_id, manage)` and the reconciler's wake-up."""
    router = APIRouter()
    responses = error_responses(401, 403, 404, 409, 422)

    def act(session: Session, caller: Identity, job_id: str,
            change: Callable[[Session, JobRow, str], None]) -> JobRow:
        row = visible_job(session, caller, job_id, manage=True)
        try:
            change(session, row, caller.user)
        except holds.StateConflict as exc:
            raise HTTPException(409, str(exc)) from None
        session.commit()
        if wake is not None:
            wake()
        return row

    @router.post("/v1/jobs/{job_id}/hold", responses=responses)
    def hold_job(job_id: job_id_type, caller: caller_dep, session: session_dep
                 ) -> dict[str, Any]:
        """Keep a waiting job from the scheduler until it is released."""
        row = act(session, caller, job_id, holds.hold)
        return {"id": row.id, "state": row.state, "held_by": row.held_by}

    @router.post("/v1/jobs/{job_id}/release", responses=responses)
    def release_job(job_id: job_id_type, caller: caller_dep, session: session_dep
                    ) -> dict[str, Any]:
        """Let a held job be scheduled again."""
        row = act(session, caller, job_id, holds.release)
        return {"id": row.id, "state": row.state, "held_by": row.held_by}

    @router.post("/v1/jobs/{job_id}/requeue", status_code=202, responses=responses)
    def requeue_job(job_id: job_id_type, caller: caller_dep, session: session_dep
                    ) -> dict[str, Any]:
        """Stop the job's run (SIGTERM, grace, SIGKILL) and put it back in the queue; it
        restarts from its checkpoint, not counted against maxRestarts."""
        row = act(session, caller, job_id, holds.requeue)
        return {"id": row.id, "state": row.state, "requeue_requested": True}

    return router
