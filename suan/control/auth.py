"""Identities and permissions: API tokens (stored hashed), users, queue admins.

A token is 32 random bytes, shown once; the store keeps only its SHA-256 digest (the token has
full entropy, so a slow password hash adds nothing). Rules:

- a user sees and cancels their own jobs;
- an admin of a queue (its spec's `admins`) sees and cancels every job of that queue;
- a cluster admin sees and does everything, and alone defines queues and users.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from suan.control.models import JobRow, TokenRow, UserRow
from suan.errors import SuanError

TOKEN_PREFIX = "suan_"


@dataclass(frozen=True)
class Identity:
    """Who is calling: a user name, and whether they administer the cluster."""

    user: str
    admin: bool = False


def digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class UserExists(SuanError):
    """A user of that name exists and the call did not ask to rotate its token."""


def create_user(session: Session, name: str, admin: bool = False, rotate: bool = False) -> str:
    """Create `name` and return a fresh token for it. For an existing user this is an error
    (UserExists) unless `rotate`: then its old tokens are revoked, `admin` is set, and the new
    token is its only one."""
    row = session.get(UserRow, name)
    if row is None:
        session.add(UserRow(name=name, admin=admin, created_at=time.time()))
    elif not rotate:
        raise UserExists(f"user {name!r} exists; rotate its token instead (revokes the old ones)")
    else:
        row.admin = admin
        session.execute(delete(TokenRow).where(TokenRow.user == name))
    session.flush()
    token = new_token()
    session.add(TokenRow(digest=digest(token), user=name, created_at=time.time()))
    return token


def identify(session: Session, token: str) -> Identity | None:
    """The identity a token stands for, or None when the token is unknown."""
    row = session.get(TokenRow, digest(token))
    if row is None:
        return None
    user = session.get(UserRow, row.user)
    return None if user is None else Identity(user.name, user.admin)


def can_manage(identity: Identity, job: JobRow, queue_admins: tuple[str, ...]) -> bool:
    """May `identity` see and cancel `job`? (owner, an admin of its queue, or cluster admin)."""
    return identity.admin or job.user == identity.user or identity.user in queue_admins
