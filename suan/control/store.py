"""The control plane's state: a SQLAlchemy engine over SQLite (embedded) or PostgreSQL.

    store = Store.open("sqlite:////home/me/.suan/suan.db")   # migrates to the newest schema
    with store.session() as session: ...                        # commits on success

`database_url(home, db)` turns the `--db` option into a URL: a SQLite file under `home` by
default; `postgresql://...` URLs use psycopg 3. The schema is created and upgraded by the
alembic migrations in `suan/control/migrations/` and nothing else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from suan.control.models import EventRow

MIGRATIONS = Path(__file__).parent / "migrations"
IDLE_IN_TRANSACTION_MS = 5000
"""PostgreSQL ends a session idle this long inside a transaction (a paused server's), which
frees the locks it held (suan.control.leader relies on it)."""


def database_url(home: Path | None, db: str | None = None) -> str:
    """The SQLAlchemy URL for `--db` (None: `home/suan.db`); postgres URLs get psycopg 3."""
    if not db:
        if home is None:
            raise ValueError("a SQLite store needs a home directory")
        return f"sqlite:///{home / 'suan.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if db.startswith(prefix):
            return "postgresql+psycopg://" + db[len(prefix) :]
    return db


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout, foreign keys and one writer
    at a time within the process (`serialize_writes`)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        serialize_writes(engine)
        return engine
    parsed = make_url(url)
    timeout = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    options = f"{parsed.query.get('options', '')} {timeout}".strip()
    parsed = parsed.update_query_dict({"options": options})
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)


WRITE_WAIT_S = 10.0
"""How long a transaction waits for the process's write lock before it goes ahead and leaves
the wait to SQLite's busy timeout (a safety valve; writers hold the lock for milliseconds)."""


def serialize_writes(engine: Engine) -> None:
    """Let one transaction of this process write to the SQLite file at a time, queued on a
    Python lock from its first write statement to its commit or rollback.

    SQLite itself admits one writer; a writer that finds the file locked sleeps in SQLite's busy
    handler in steps of up to 100 ms before it looks again, so concurrent API requests and the
    reconciler took turns in those steps (p99 latencies near a second). Waiting on a Python lock
    instead wakes the next writer the moment the lock is free. Reads take no lock (WAL).
    """
    lock = threading.Lock()

    def before_execute(conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if "writing" in conn.info or _reads_only(statement):
            return
        conn.info["writing"] = lock.acquire(timeout=WRITE_WAIT_S)

    def release(info: dict) -> None:
        if info.pop("writing", False):
            lock.release()

    def reset(_dbapi_connection, connection_record, _reset_state) -> None:  # type: ignore[no-untyped-def]
        release(connection_record.info)

    def invalidate(_dbapi_connection, connection_record, _exception) -> None:  # type: ignore[no-untyped-def]
        release(connection_record.info)

    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", lambda conn: release(conn.info))
    event.listen(engine, "rollback", lambda conn: release(conn.info))
    event.listen(engine.pool, "reset", reset)
    event.listen(engine.pool, "invalidate", invalidate)


def _reads_only(statement: str) -> bool:
    head = statement.lstrip()[:8].upper()
    return head.startswith(("SELECT", "PRAGMA", "WITH", "EXPLAIN"))


def migrate(engine: Engine) -> None:
    """Upgrade the database behind `engine` to the newest schema (alembic `upgrade head`)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    """The engine and a session factory. Sessions commit when their block ends cleanly."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to `url` and migrate it to the newest schema."""
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def plain_session(self) -> Session:
        """A session whose caller commits (the API's per-request session)."""
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()


def add_event(
    session: Session, job_id: str, kind: str, message: str, when: float | None = None
) -> None:
    """Record something that happened to a job (a transition, an exit code, a placement)."""
    session.add(
        EventRow(
            job_id=job_id, time=time.time() if when is None else when, kind=kind, message=message
        )
    )
