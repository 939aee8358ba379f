"""The node routes of the REST API: a cluster admin cordons, uncordons and drains nodes.

    POST /v1/nodes/{name}/cordon    {"reason"}              -> the node's operator state
    POST /v1/nodes/{name}/uncordon                           -> the same, `operator` null
    POST /v1/nodes/{name}/drain     {"reason", "grace_s"}   -> the node's operator state

A cordoned node takes no new work; a drained one is cordoned, and `grace_s` seconds later
(default 600) every gang with a replica on it is stopped and requeued (suan.control.drain).
Only cluster admins may (403 otherwise); a node the engine does not report is a 404 naming it
(uncordon also takes a node that has an override although the engine no longer reports it).
`GET /v1/nodes` shows each node's operator state beside the engine's (`node_health_views`).
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.control.api_errors import error_responses
from suan.control.auth import Identity
from suan.control.bodies import StrictBody
from suan.control.inventory import ClusterInventory
from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.control.overrides import (
    SOURCE,
    Action,
    clear_override,
    load_overrides,
    operator_verdicts,
    override_view,
    set_override,
)

NodeName = Annotated[
    str, Path(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
DEFAULT_GRACE_S = 600.0
"""A drain's grace without `grace_s`: ten minutes for the node's gangs to end or checkpoint."""
MAX_GRACE_S = 7 * 86400.0
HOLDING = tuple(s.value for s in JobState if s.holds_devices)
Reason = Annotated[str, Field(min_length=1, max_length=1000)]


class CordonRequest(StrictBody):
    """Why the node takes no new work (shown with the node and on the jobs that wait)."""

    reason: Reason


class DrainRequest(StrictBody):
    """Why the node is drained, and how many seconds its gangs have before they are stopped
    (0 to 7 days; default 600)."""

    reason: Reason
    grace_s: float = Field(default=DEFAULT_GRACE_S, ge=0, le=MAX_GRACE_S)


def sync_operator_verdicts(session: Session, inventory: ClusterInventory) -> None:
    """Give the inventory the overrides in the store (another server may have written them)."""
    inventory.set_verdicts(SOURCE, operator_verdicts(load_overrides(session)))


def node_health_views(
    session: Session,
    inventory: ClusterInventory,
    views: list[dict[str, Any]],
    holding: list[JobRow],
) -> list[dict[str, Any]]:
    """`views` (node_view's) with the engine's health and reason, the operator's override
    (`operator`, null when none) and every other source's verdicts beside the merged health."""
    overrides = load_overrides(session)
    engine = inventory.engine_cluster()
    now = time.time()
    for view in views:
        name = view["name"]
        own = engine.node(name) if name in engine.index else None
        view["engine_health"] = str(own.health) if own else view["health"]
        view["engine_reason"] = own.health_reason if own else ""
        view["operator"] = override_view(overrides.get(name), holding, now)
        view["verdicts"] = [
            {"source": v.source, "severity": str(v.severity), "reason": v.reason}
            for v in inventory.verdicts(name)
            if v.source != SOURCE
        ]
    return views


def node_router(caller_dep: Any, session_dep: Any, inventory: ClusterInventory,
                wake: Any = None) -> APIRouter:
    """The node routes, with the app's dependencies for the caller and the request's session
    (Annotated types), the inventory the server shares with its reconciler and its wake-up."""
    router = APIRouter()

    def admin_only(caller: Identity, what: str) -> None:
        if not caller.admin:
            raise HTTPException(403, f"only a cluster admin {what} nodes; {caller.user} is not one")

    def known(name: str) -> None:
        cluster = inventory.current()
        if name in cluster.index:
            return
        names = ", ".join(node.name for node in list(cluster)[:20]) or "none"
        raise HTTPException(404, f"no node {name!r}: the engine reports {names}")

    def answer(session: Session, name: str) -> dict[str, Any]:
        session.commit()
        sync_operator_verdicts(session, inventory)
        if wake is not None:
            wake()
        holding = list(session.scalars(select(JobRow).where(JobRow.state.in_(HOLDING))))
        override = load_overrides(session).get(name)
        return {"name": name, "operator": override_view(override, holding, time.time())}

    @router.post("/v1/nodes/{name}/cordon", responses=error_responses(400, 401, 403, 404, 422))
    def cordon(
        name: NodeName, body: CordonRequest, caller: caller_dep, session: session_dep
    ) -> dict[str, Any]:
        """No new work on the node; gangs running there go on (a drain becomes a cordon)."""
        admin_only(caller, "cordons")
        known(name)
        set_override(session, name, Action.CORDON, body.reason, caller.user, time.time())
        return answer(session, name)

    @router.post("/v1/nodes/{name}/uncordon", responses=error_responses(401, 403, 404, 422))
    def uncordon(name: NodeName, caller: caller_dep, session: session_dep) -> dict[str, Any]:
        """The operator's cordon or drain is lifted: the node takes work as its engine says."""
        admin_only(caller, "uncordons")
        if name not in load_overrides(session):
            known(name)
        clear_override(session, name)
        return answer(session, name)

    @router.post("/v1/nodes/{name}/drain", responses=error_responses(400, 401, 403, 404, 422))
    def drain(
        name: NodeName, body: DrainRequest, caller: caller_dep, session: session_dep
    ) -> dict[str, Any]:
        """Cordon the node; once `grace_s` has passed, stop every gang with a replica on it
        and requeue it (restarted from its last checkpoint, not counted as a failure)."""
        admin_only(caller, "drains")
        known(name)
        set_override(
            session, name, Action.DRAIN, body.reason, caller.user, time.time(), body.grace_s
        )
        return answer(session, name)

    return router
