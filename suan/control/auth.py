"""Identities and permissions: API tokens (stored hashed), users, queue access.

A token is 32 random bytes, shown once; the store keeps only its SHA-256 digest (the token has
full entropy, so a slow password hash adds nothing) beside a short public `id` (12 hex digits)
by which it is listed, revoked and rotated, a `name`, and an optional expiry. Revoking deletes
the row: a revoked token is then as unknown as one never issued. Rules for jobs:

- a user sees and cancels their own jobs;
- an admin of a queue (its spec's `admins`) sees and cancels every job of that queue;
- a viewer of a queue (its spec's `viewers`, `*` for everyone) sees its jobs but cancels none;
- a cluster admin sees and does everything, and alone defines queues and users;
- a queue takes jobs from everyone unless its spec lists `submitters`: then only from those
  users (`*`: everyone), its admins and cluster admins.

A caller who may not see a job is told it does not exist (the API's 404), never that it is
someone else's.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from suan.control.models import JobRow, TokenRow, UserRow
from suan.errors import SuanError
from suan.jobs.queue import EVERYONE, QueueSpec

TOKEN_PREFIX = "suan_"
DEFAULT_TOKEN_LIFETIME_S = 90 * 86400
"""Lifetime of a token made with `suan tokens create` (POST /v1/tokens) unless it says
otherwise. Tokens of `suan users add` and the server's admin-token file never expire."""
MAX_TOKEN_LIFETIME_S = 10 * 365 * 86400


@dataclass(frozen=True)
class Identity:
    """Who is calling: a user name, whether they administer the cluster, and the public id of
    the token they called with (not part of equality)."""

    user: str
    admin: bool = False
    token_id: str | None = field(default=None, compare=False)


class UserExists(SuanError):
    """A user of that name exists and the call did not ask to rotate its token."""


class Unauthenticated(SuanError):
    """A token that identifies nobody: unknown (never issued, or revoked) or expired."""


class TokenNotFound(SuanError):
    """No token of that id that the caller may manage (absent and another user's alike)."""


def digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


def issue_token(
    session: Session,
    user: str,
    name: str = "",
    expires_at: float | None = None,
    now: float | None = None,
) -> tuple[TokenRow, str]:
    """Store a new token for `user` (who must exist); its row and the secret, shown once.
    `expires_at` None: it never expires."""
    token = new_token()
    row = TokenRow(
        digest=digest(token),
        id=secrets.token_hex(6),
        user=user,
        name=name,
        created_at=time.time() if now is None else now,
        expires_at=expires_at,
        last_used_at=None,
    )
    session.add(row)
    session.flush()
    return row, token


def create_user(
    session: Session, name: str, admin: bool = False, rotate: bool = False, token_name: str = ""
) -> str:
    """Create `name` and return a fresh token for it (no expiry). For an existing user this is
    an error (UserExists) unless `rotate`: then its old tokens are revoked, `admin` is set, and
    the new token is its only one."""
    exists = UserExists(f"user {name!r} exists; rotate its token instead (revokes the old ones)")
    row = session.get(UserRow, name)
    if row is None:
        if not _insert_user(session, name, admin):  # a concurrent request made it meanwhile
            if not rotate:
                raise exists
            row = session.get(UserRow, name)
    elif not rotate:
        raise exists
    if row is not None:
        row.admin = admin
        session.execute(delete(TokenRow).where(TokenRow.user == name))
    session.flush()
    return issue_token(session, name, token_name)[1]


def _insert_user(session: Session, name: str, admin: bool) -> bool:
    """Insert user `name` unless it exists (also when another transaction just made it);
    True when this call made it."""
    dialect = session.get_bind().dialect.name
    insert_of = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_of(UserRow).values(name=name, admin=admin, created_at=time.time())
    statement = statement.on_conflict_do_nothing(index_elements=["name"]).returning(UserRow.name)
    return session.execute(statement).first() is not None


def authenticate(session: Session, token: str, now: float | None = None) -> Identity:
    """The identity `token` stands for; Unauthenticated when it is unknown (never issued,
    revoked, or its user deleted) or expired."""
    row = session.get(TokenRow, digest(token))
    user = None if row is None else session.get(UserRow, row.user)
    if row is None or user is None:
        raise Unauthenticated("unknown token: it was revoked or never issued")
    if row.expires_at is not None and row.expires_at <= (time.time() if now is None else now):
        raise Unauthenticated(
            f"token {row.id} ({row.user}) expired at {_utc(row.expires_at)}; "
            "create a new one (suan tokens create) or ask a cluster admin"
        )
    return Identity(user.name, user.admin, row.id)


def identify(session: Session, token: str, now: float | None = None) -> Identity | None:
    """The identity a token stands for, or None when the token is unknown or expired."""
    try:
        return authenticate(session, token, now)
    except Unauthenticated:
        return None


def list_tokens(session: Session, user: str | None) -> list[TokenRow]:
    """The tokens of `user` (None: everyone's), oldest first."""
    query = select(TokenRow).order_by(TokenRow.created_at, TokenRow.id)
    if user is not None:
        query = query.where(TokenRow.user == user)
    return list(session.scalars(query))


def token_info(row: TokenRow, caller: Identity, now: float | None = None) -> dict[str, object]:
    """What a listing shows of a token: never its secret or digest."""
    now = time.time() if now is None else now
    return {
        "id": row.id,
        "user": row.user,
        "name": row.name,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "expired": row.expires_at is not None and row.expires_at <= now,
        "current": row.id == caller.token_id,
    }


def find_token(session: Session, caller: Identity, token_id: str) -> TokenRow:
    """The token `token_id` if the caller may manage it (their own; any for a cluster admin);
    TokenNotFound otherwise, whether it exists or not."""
    row = session.scalar(select(TokenRow).where(TokenRow.id == token_id))
    if row is None or not (caller.admin or row.user == caller.user):
        raise TokenNotFound(f"no token {token_id!r}")
    return row


def revoke_token(session: Session, caller: Identity, token_id: str) -> TokenRow:
    """Delete the token `token_id` (see find_token); from now on it is an unknown token."""
    row = find_token(session, caller, token_id)
    session.delete(row)
    session.flush()
    return row


def rotate_token(
    session: Session,
    caller: Identity,
    token_id: str,
    lifetime_s: float | None,
    keep_lifetime: bool,
    now: float | None = None,
) -> tuple[TokenRow, str]:
    """Replace the token `token_id` (see find_token) by a new one of the same user and name,
    in one transaction. The new one lives `lifetime_s` (None: forever), or as long as the old
    one was issued for when `keep_lifetime`."""
    now = time.time() if now is None else now
    old = find_token(session, caller, token_id)
    if keep_lifetime:
        lifetime_s = None if old.expires_at is None else old.expires_at - old.created_at
    user, name = old.user, old.name
    session.delete(old)
    session.flush()
    expires_at = None if lifetime_s is None else now + lifetime_s
    return issue_token(session, user, name, expires_at, now)


def can_manage(identity: Identity, job: JobRow, queue_admins: tuple[str, ...]) -> bool:
    """May `identity` see and cancel `job`? (owner, an admin of its queue, or cluster admin)."""
    return identity.admin or job.user == identity.user or identity.user in queue_admins


def views_all_jobs(identity: Identity, queue: QueueSpec) -> bool:
    """Does `identity` see every job of `queue`? (cluster admin, its admin, or its viewer)."""
    return (
        identity.admin
        or identity.user in queue.admins
        or identity.user in queue.viewers
        or EVERYONE in queue.viewers
    )


def can_view(identity: Identity, job: JobRow, queue: QueueSpec | None) -> bool:
    """May `identity` see `job` (describe, logs, listing)? Those who manage it, and the
    viewers of its queue."""
    if queue is None:
        return identity.admin or job.user == identity.user
    return job.user == identity.user or views_all_jobs(identity, queue)


def may_submit(identity: Identity, queue: QueueSpec) -> bool:
    """May `identity` submit jobs to `queue`? Everyone to an open queue; otherwise its listed
    submitters, its admins and cluster admins."""
    return (
        identity.admin
        or queue.open
        or identity.user in (queue.submitters or ())
        or identity.user in queue.admins
    )


def who_may_submit(queue: QueueSpec) -> str:
    """The users who may submit to `queue`, in words (for a 403)."""
    listed = ", ".join(queue.submitters or ()) or "nobody listed"
    admins = ", ".join(queue.admins) or "none"
    return f"its submitters ({listed}), its admins ({admins}) and cluster admins"
