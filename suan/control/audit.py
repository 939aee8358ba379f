"""The audit log: every mutating API call (POST, PUT, PATCH, DELETE), accepted or refused, with
the caller it was made as. Cluster admins read it (`GET /v1/audit`, `suan audit`)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from suan.control.auth import identify
from suan.control.models import AuditRow
from suan.control.store import Store
from suan.errors import SuanError

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def record_call(
    store: Store, token: str | None, method: str, path: str, status: int, cookie: str | None = None
) -> None:
    """Append one call; the user is the token's, else the dashboard session's (`cookie`), or
    `-` when neither is valid."""
    with store.session() as session:
        user = _caller(session, token, cookie)
        session.add(
            AuditRow(
                time=time.time(),
                user=user,
                method=method,
                path=path[:2000],
                status=status,
            )
        )


def _caller(session: Any, token: str | None, cookie: str | None) -> str:
    caller = identify(session, token) if token else None
    if caller is not None:
        return caller.user
    if cookie:
        from suan.web.sessions import find_login  # the dashboard's logins (suan.web)

        try:
            return find_login(session, cookie).identity.user
        except SuanError:
            return "-"
    return "-"


def recent(session: Any, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` calls, newest first."""
    rows = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
    return [
        {"time": r.time, "user": r.user, "method": r.method, "path": r.path, "status": r.status}
        for r in rows
    ]
