"""Idempotency keys for `POST /v1/jobs`: a retried submission does not submit twice.

A client sends `Idempotency-Key: KEY` (1 to 255 visible ASCII characters, e.g. a UUID). The
server keeps, per user and key, a digest of the request (its `yaml` and `workdir`) and the
answer it gave, for RETENTION_S (24 hours) after the first request:

- the same key with the same request answers the stored 201 again (same job ids), with the
  header `Idempotent-Replayed: true`, and stores nothing new;
- the same key with another request is a 409;
- a request that failed (422, 403) stores nothing: sent again, it is judged again.

Two requests with one key at once: the key's row is claimed first, in the submission's own
transaction, and the table's primary key (user, key) lets only one claim commit. The other
waits for it (the database's lock), fails to insert, rolls back all it did, and answers as a
retry would. Keys older than RETENTION_S are deleted when a new key is claimed (an indexed
range delete), so the table holds about one day of keyed submissions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suan.control.models import IdempotencyRow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
RETENTION_S = 24 * 3600.0


class KeyReused(Exception):
    """The key was used for a different request (an HTTP 409), with the reason."""


@dataclass(frozen=True)
class Stored:
    """The answer given to the first request with a key."""

    status: int
    body: dict[str, Any]


def request_digest(yaml_text: str, workdir: str | None) -> str:
    """SHA-256 of the request as the server reads it: the spec text and the workdir."""
    normalized = json.dumps({"yaml": yaml_text, "workdir": workdir or ""}, sort_keys=True)
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()


def replay(session: Session, user: str, key: str, digest: str, now: float) -> Stored | None:
    """The stored answer for `user`'s `key` if it is fresh; KeyReused if it was for another
    request; None if there is none (or only an expired one)."""
    row = session.get(IdempotencyRow, (user, key), populate_existing=True)
    if row is None or row.created_at < now - RETENTION_S or row.body is None:
        return None
    if row.digest != digest:
        raise KeyReused(
            f"Idempotency-Key {key!r} was already used for a different request "
            f"(at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(row.created_at))}); "
            "send a new key with a new request"
        )
    return Stored(row.status, json.loads(row.body))


def claim(session: Session, user: str, key: str, digest: str, now: float) -> bool:
    """Claim `key` for this request in the session's transaction; False if another request
    holds it (the session is then rolled back: everything it did is undone).

    Deletes keys older than RETENTION_S first."""
    session.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < now - RETENTION_S))
    session.add(IdempotencyRow(user=user, key=key, digest=digest, created_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    return True


def remember(session: Session, user: str, key: str, status: int, body: dict[str, Any]) -> None:
    """Store the answer to the request that claimed `key` (committed with it)."""
    row = session.get(IdempotencyRow, (user, key))
    if row is not None:
        row.status, row.body = status, json.dumps(body)
