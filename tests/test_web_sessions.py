"""Dashboard sessions: opened with an API token, they end with it (revoked, rotated, expired),
never outlive it, expire on their own, and carry a CSRF token that forms must return."""

from __future__ import annotations

import pytest

from suan.control.auth import (
    Identity,
    Unauthenticated,
    create_user,
    issue_token,
    revoke_token,
    rotate_token,
)
from suan.control.store import Store, database_url
from suan.web.sessions import (
    SESSION_LIFETIME_S,
    close_session,
    csrf_matches,
    find_login,
    open_session,
)

NOW = 1_000_000.0


@pytest.fixture
def store(tmp_path):
    opened = Store.open(database_url(tmp_path))
    yield opened
    opened.close()


def user_token(store: Store, name: str = "alice", expires_at: float | None = None):
    with store.session() as session:
        create_user(session, name)
        row, token = issue_token(session, name, "browser", expires_at, now=NOW)
        return row.id, token


def test_a_session_stands_for_its_tokens_user(store):
    token_id, token = user_token(store)
    with store.session() as session:
        opened = open_session(session, token, now=NOW)
        login = find_login(session, opened.cookie, now=NOW + 60)
    assert login.identity == Identity("alice", False)
    assert login.identity.token_id == token_id
    assert opened.max_age_s == SESSION_LIFETIME_S
    assert opened.cookie not in login.csrf and len(login.csrf) >= 32


def test_an_invalid_token_opens_no_session(store):
    user_token(store)
    with store.session() as session, pytest.raises(Unauthenticated):
        open_session(session, "suan_guessed", now=NOW)


def test_a_session_ends_on_its_own_and_never_outlives_its_token(store):
    _, token = user_token(store, expires_at=NOW + 600)
    with store.session() as session:
        opened = open_session(session, token, now=NOW)
        assert opened.max_age_s == 600
        find_login(session, opened.cookie, now=NOW + 599)
        with pytest.raises(Unauthenticated, match="expired"):
            find_login(session, opened.cookie, now=NOW + 600)


def test_revoking_or_rotating_the_token_ends_the_session(store):
    token_id, token = user_token(store)
    alice = Identity("alice", False)
    with store.session() as session:
        first = open_session(session, token, now=NOW)
        rotated, new_token = rotate_token(session, alice, token_id, None, False, now=NOW)
        with pytest.raises(Unauthenticated, match="revoked"):
            find_login(session, first.cookie, now=NOW)
        second = open_session(session, new_token, now=NOW)
        revoke_token(session, alice, rotated.id)
        with pytest.raises(Unauthenticated, match="revoked"):
            find_login(session, second.cookie, now=NOW)


def test_logging_out_forgets_the_session(store):
    _, token = user_token(store)
    with store.session() as session:
        opened = open_session(session, token, now=NOW)
        close_session(session, opened.cookie)
        with pytest.raises(Unauthenticated):
            find_login(session, opened.cookie, now=NOW)
        with pytest.raises(Unauthenticated):
            find_login(session, None, now=NOW)


def test_csrf_must_match_exactly(store):
    _, token = user_token(store)
    with store.session() as session:
        login = find_login(session, open_session(session, token, now=NOW).cookie, now=NOW)
    assert csrf_matches(login, login.csrf)
    assert not csrf_matches(login, None)
    assert not csrf_matches(login, "")
    assert not csrf_matches(login, login.csrf[:-1])
