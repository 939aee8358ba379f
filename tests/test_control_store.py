"""The store on SQLite and on a real PostgreSQL server (SUAN_TEST_POSTGRES_URL; see
scripts/ci-postgres.sh): migrations, tokens stored hashed, jobs and events round-trip, and the
lifecycle's transitions."""

from __future__ import annotations

import os
import uuid

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

import sqlalchemy as sa

from suan.control.auth import Identity, can_manage, create_user, digest, identify
from suan.control.lifecycle import (
    JobState,
    TransitionError,
    after_exit,
    check_transition,
    restart_backoff_s,
)
from suan.control.models import JobRow, TokenRow
from suan.control.store import Store, add_event, database_url


def _postgres_url() -> str:
    url = os.environ.get("SUAN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "no PostgreSQL server: set SUAN_TEST_POSTGRES_URL "
            '(eval "$(bash scripts/ci-postgres.sh)")'
        )
    pytest.importorskip("psycopg")
    try:
        engine = sa.create_engine(database_url(None, url))
        with engine.connect():
            pass
        engine.dispose()
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at SUAN_TEST_POSTGRES_URL is not reachable: {exc.orig}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = Store.open(database_url(tmp_path))
        yield opened
        opened.close()
        return
    base = database_url(None, _postgres_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    opened = Store.open(base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}")
    yield opened
    opened.close()
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_migrations_create_every_table_and_run_twice(store):
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"users", "tokens", "queues", "jobs", "ranks", "events", "alembic_version"} <= tables
    Store.open(store.engine.url.render_as_string(hide_password=False)).close()


def test_tokens_are_stored_hashed_and_identify_their_user(store):
    with store.session() as session:
        token = create_user(session, "alice")
        admin_token = create_user(session, "root", admin=True)
    with store.session() as session:
        stored = [row.digest for row in session.scalars(sa.select(TokenRow))]
        assert token not in stored and digest(token) in stored
        assert identify(session, token) == Identity("alice", False)
        assert identify(session, admin_token) == Identity("root", True)
        assert identify(session, "suan_forged") is None


def _job(job_id: str, user: str = "alice", queue: str = "default") -> JobRow:
    return JobRow(
        id=job_id,
        name="j",
        user=user,
        queue=queue,
        state="pending",
        document="{}",
        checkpoint_dir="/tmp/x",
        workdir="",
        submit_time=1.0,
        attempt=0,
        restarts=0,
        reason="",
        reason_code="",
        cancel_requested=False,
        stop_reason="",
    )


def test_jobs_and_their_events_round_trip(store):
    with store.session() as session:
        session.add(_job("j-1"))
        session.flush()
        add_event(session, "j-1", "submitted", "by alice", 1.0)
        add_event(session, "j-1", "scheduled", "on vm", 2.0)
    with store.session() as session:
        row = session.get(JobRow, "j-1")
        assert row is not None and row.state == "pending"
        row.state = check_transition(row.state, "scheduled").value
    with store.session() as session:
        assert session.get(JobRow, "j-1").state == "scheduled"
        kinds = session.scalars(sa.text("SELECT kind FROM events ORDER BY id")).all()
        assert kinds == ["submitted", "scheduled"]


def test_permissions_owner_queue_admin_and_cluster_admin():
    job = _job("j-2", user="bob", queue="team-a")
    assert can_manage(Identity("bob"), job, ())
    assert not can_manage(Identity("alice"), job, ())
    assert can_manage(Identity("carol"), job, ("carol",))
    assert can_manage(Identity("root", admin=True), job, ())


def test_lifecycle_allows_only_its_transitions():
    assert check_transition("pending", "scheduled") == JobState.SCHEDULED
    assert check_transition("running", "preempted") == JobState.PREEMPTED
    with pytest.raises(TransitionError):
        check_transition("succeeded", "running")
    with pytest.raises(TransitionError):
        check_transition("pending", "running")
    assert after_exit("on-failure", False, 0, 3) == JobState.RESTARTING
    assert after_exit("on-failure", False, 3, 3) == JobState.FAILED
    assert after_exit("on-failure", True, 0, 3) == JobState.SUCCEEDED
    assert after_exit("never", False, 0, 3) == JobState.FAILED
    assert after_exit("always", True, 0, 1) == JobState.RESTARTING
    assert [restart_backoff_s(n, 2.0) for n in (1, 2, 3, 10)] == [2.0, 4.0, 8.0, 60.0]
