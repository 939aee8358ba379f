"""The store on SQLite and on a real PostgreSQL server (SUAN_TEST_POSTGRES_URL; see
scripts/ci-postgres.sh): migrations (tokens issued before 0004 keep working), tokens stored
hashed, expiring, revoked and rotated, jobs and events round-trip, queue access, and the
lifecycle's transitions."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from suan.control.auth import (
    Identity,
    TokenNotFound,
    Unauthenticated,
    authenticate,
    can_manage,
    can_view,
    create_user,
    digest,
    identify,
    issue_token,
    list_tokens,
    may_submit,
    revoke_token,
    rotate_token,
)
from suan.control.lifecycle import (
    JobState,
    TransitionError,
    after_exit,
    check_transition,
    restart_backoff_s,
)
from suan.control.models import JobRow, TokenRow
from suan.control.store import MIGRATIONS, Store, add_event, database_url, make_engine
from suan.jobs.queue import QueueSpec


def _postgres_url() -> str:
    url = os.environ.get("SUAN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "no PostgreSQL server: set SUAN_TEST_POSTGRES_URL "
            '(eval "$(bash scripts/ci-postgres.sh)")'
        )
    try:
        engine = sa.create_engine(database_url(None, url))
        with engine.connect():
            pass
        engine.dispose()
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at SUAN_TEST_POSTGRES_URL is not reachable: {exc.orig}")
    return url


@contextmanager
def _empty_database(kind: str, tmp_path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        yield database_url(tmp_path)
        return
    base = database_url(None, _postgres_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    with _empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(empty_url):
    opened = Store.open(empty_url)
    yield opened
    opened.close()


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


def test_tokens_issued_before_0004_get_an_id_and_keep_working(empty_url):
    from alembic import command
    from alembic.config import Config

    engine = make_engine(empty_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(sa.text("INSERT INTO users VALUES ('old', false, 1.0)"))
        for secret in ("suan_one", "suan_two"):
            connection.execute(
                sa.text("INSERT INTO tokens VALUES (:digest, 'old', 1.0)"),
                {"digest": digest(secret)},
            )
    engine.dispose()
    store = Store.open(empty_url)
    try:
        with store.session() as session:
            rows = list_tokens(session, "old")
            assert len({row.id for row in rows}) == 2 and all(len(r.id) == 12 for r in rows)
            assert [(r.name, r.expires_at, r.last_used_at) for r in rows] == [("", None, None)] * 2
            assert identify(session, "suan_one") == Identity("old")
            with pytest.raises(sa.exc.IntegrityError):
                session.add(TokenRow(digest="x", id=rows[0].id, user="old", created_at=2.0))
                session.flush()
    finally:
        store.close()


def test_an_expired_token_says_so_and_a_revoked_one_is_unknown(store):
    now = time.time()
    with store.session() as session:
        create_user(session, "alice")
        _, lapsed = issue_token(session, "alice", "old laptop", expires_at=now - 1)
        live_row, live = issue_token(session, "alice", "ci", expires_at=now + 60)
    with store.session() as session:
        with pytest.raises(Unauthenticated, match=r"expired at .* UTC"):
            authenticate(session, lapsed)
        assert identify(session, lapsed) is None
        assert authenticate(session, live).token_id == live_row.id
        with pytest.raises(Unauthenticated, match="expired"):
            authenticate(session, live, now=now + 61)
        revoke_token(session, Identity("alice"), live_row.id)
    with store.session() as session:
        with pytest.raises(Unauthenticated, match="unknown token"):
            authenticate(session, live)
        assert [row.name for row in list_tokens(session, "alice")] == ["", "old laptop"]


def test_only_the_owner_or_a_cluster_admin_manages_a_token(store):
    with store.session() as session:
        create_user(session, "alice")
        create_user(session, "bob")
        row, secret = issue_token(session, "alice", "laptop", expires_at=time.time() + 3600)
    with store.session() as session:
        for attempt in (revoke_token, lambda s, c, i: rotate_token(s, c, i, None, True)):
            with pytest.raises(TokenNotFound) as missing:
                attempt(session, Identity("bob"), row.id)
            assert str(missing.value) == f"no token {row.id!r}"
        with pytest.raises(TokenNotFound) as missing:
            revoke_token(session, Identity("bob"), "0123456789ab")
        assert str(missing.value) == "no token '0123456789ab'"
        assert identify(session, secret) == Identity("alice")


def test_rotating_replaces_the_token_keeping_its_name_and_lifetime(store):
    with store.session() as session:
        create_user(session, "alice")
        [first] = list_tokens(session, "alice")
        old, old_secret = issue_token(session, "alice", "laptop", 1000.0 + 3600, now=1000.0)
    with store.session() as session:
        new, new_secret = rotate_token(session, Identity("alice"), old.id, None, True, now=5000.0)
        assert (new.name, new.created_at, new.expires_at) == ("laptop", 5000.0, 5000.0 + 3600)
    with store.session() as session:
        assert identify(session, old_secret, now=5001.0) is None
        assert identify(session, new_secret, now=5001.0) == Identity("alice")
        forever, _ = rotate_token(session, Identity("root", True), new.id, None, False)
        assert forever.expires_at is None and forever.user == "alice"
        assert [row.id for row in list_tokens(session, "alice")] == [first.id, forever.id]


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


def test_queue_members_viewers_and_admins():
    job = _job("j-3", user="bob", queue="secret")
    secret = QueueSpec("secret", admins=("carol",), submitters=("bob",), viewers=("vic",))
    public = QueueSpec("public", viewers=("*",))
    mallory, vic, carol = Identity("mallory"), Identity("vic"), Identity("carol")
    assert [may_submit(who, secret) for who in (mallory, vic, carol, Identity("bob"))] == [
        False,
        False,
        True,
        True,
    ]
    assert may_submit(Identity("root", admin=True), secret)
    assert may_submit(mallory, public) and not may_submit(mallory, QueueSpec("q", submitters=()))
    assert not can_view(mallory, job, secret) and can_view(vic, job, secret)
    assert can_view(carol, job, secret) and not can_manage(vic, job, secret.admins)
    assert can_view(mallory, _job("j-4", user="bob", queue="public"), public)


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


def test_concurrent_requests_to_add_one_user_make_it_once(store):
    """Eight requests add the same user at once: one gets a token, the others UserExists
    (a 409), none an integrity error (a 500)."""
    import threading

    from suan.control.auth import UserExists

    outcomes: list[str] = []
    start = threading.Barrier(8)

    def add() -> None:
        start.wait()
        try:
            with store.session() as session:
                create_user(session, "same")
            outcomes.append("made")
        except UserExists:
            outcomes.append("exists")
        except Exception as exc:  # the failure this test is about
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["exists"] * 7 + ["made"], outcomes
