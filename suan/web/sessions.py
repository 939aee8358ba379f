"""Dashboard logins: an API token buys a session cookie.

Logging in with a valid token stores a session row keyed by the SHA-256 digest of a fresh
random cookie value (the store never holds the cookie itself), with a CSRF token that every
mutating form must send back. A session lives `SESSION_LIFETIME_S`, never past its token's own
expiry, and is looked up together with its token on every request: revoking, rotating or
expiring the token ends the session at once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from suan.control.auth import Identity, Unauthenticated, authenticate, digest
from suan.control.models import TokenRow, UserRow, WebSessionRow

COOKIE = "suan_session"
SESSION_LIFETIME_S = 8 * 3600.0
"""A working day: long enough not to interrupt an operator's shift, short enough that a
forgotten browser does not stay logged in overnight."""


@dataclass(frozen=True)
class WebLogin:
    """A browser's login: who it is and the CSRF token its forms carry."""

    identity: Identity
    csrf: str


@dataclass(frozen=True)
class NewSession:
    """A session just opened: the cookie's value (given to the browser once), its lifetime."""

    cookie: str
    max_age_s: int


def open_session(session: Session, token: str, now: float | None = None) -> NewSession:
    """A session for the holder of API `token`; Unauthenticated when the token is not valid."""
    now = time.time() if now is None else now
    identity = authenticate(session, token.strip(), now)
    row = session.get(TokenRow, digest(token.strip()))
    ends = now + SESSION_LIFETIME_S
    if row is not None and row.expires_at is not None:
        ends = min(ends, row.expires_at)
    cookie = secrets.token_urlsafe(32)
    session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
    session.add(WebSessionRow(
        digest=digest(cookie), token_id=identity.token_id, user=identity.user,
        csrf=secrets.token_urlsafe(32), created_at=now, expires_at=ends,
    ))
    session.flush()
    return NewSession(cookie, max(1, int(ends - now)))


def find_login(session: Session, cookie: str | None, now: float | None = None) -> WebLogin:
    """The login behind a session cookie; Unauthenticated when there is none, it expired, or
    the token it was opened with is revoked or expired."""
    now = time.time() if now is None else now
    row = session.get(WebSessionRow, digest(cookie)) if cookie else None
    if row is None or row.expires_at <= now:
        raise Unauthenticated("not logged in, or the session expired")
    token = session.query(TokenRow).filter(TokenRow.id == row.token_id).one_or_none()
    user = session.get(UserRow, row.user)
    if token is None or user is None or token.user != row.user:
        raise Unauthenticated("the token this session was opened with was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated("the token this session was opened with expired")
    return WebLogin(Identity(user.name, user.admin, token.id), row.csrf)


def close_session(session: Session, cookie: str | None) -> None:
    """Forget the session behind `cookie` (logging out); nothing when there is none."""
    if cookie:
        session.execute(delete(WebSessionRow).where(WebSessionRow.digest == digest(cookie)))


def csrf_matches(login: WebLogin, sent: str | None) -> bool:
    """Did the form send this login's CSRF token? (constant-time comparison)."""
    return bool(sent) and hmac.compare_digest(login.csrf.encode(), str(sent).encode())


__all__ = ["COOKIE", "Unauthenticated", "WebLogin", "close_session", "csrf_matches",
           "find_login", "open_session"]
