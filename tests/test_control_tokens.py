"""API tokens against a real server: created with an expiry and a name, listed without their
secrets, revoked and rotated by id (another user's token is a 404), expired and revoked tokens
refused with a 401 saying why; strict request bodies; the admin-token file across restarts;
the `suan tokens` commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from control_helpers import running_server
from control_helpers import server as server

from suan.client import ApiError, Client
from suan.control.auth import (
    DEFAULT_TOKEN_LIFETIME_S,
    authenticate,
    digest,
    issue_token,
    list_tokens,
    revoke_token,
)
from suan.control.server import ensure_admin_token
from suan.control.store import Store, database_url
from suan.errors import SuanError


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only add users and tokens of their own."""
    with running_server(tmp_path_factory.mktemp("tokens") / "home") as running:
        yield running


def _refusal(call) -> ApiError:
    with pytest.raises(ApiError) as refused:
        call()
    return refused.value


def test_tokens_are_listed_without_secrets_revoked_and_rotated(shared):
    server = shared
    admin = server.client()
    dana = server.client(admin.create_user("dana"))
    laptop = dana.create_token("laptop", "30d")
    assert laptop["expires_at"] - laptop["created_at"] == 30 * 86400
    default = dana.create_token()
    assert default["expires_at"] - default["created_at"] == DEFAULT_TOKEN_LIFETIME_S
    forever = dana.create_token("robot", "never")
    assert forever["expires_at"] is None
    as_laptop = server.client(laptop["token"])
    listed = as_laptop.tokens()
    text = repr(listed)
    for secret in (laptop["token"], default["token"], forever["token"]):
        assert secret not in text and digest(secret) not in text
    assert [t["name"] for t in listed] == ["", "laptop", "", "robot"]
    assert [t["current"] for t in listed] == [False, True, False, False]
    assert next(t for t in listed if t["current"])["last_used_at"] is not None
    assert set(listed[0]) == {
        "id", "user", "name", "created_at", "expires_at", "last_used_at", "expired", "current"
    }

    rotated = dana.rotate_token(laptop["id"])
    assert rotated["name"] == "laptop" and rotated["id"] != laptop["id"]
    assert rotated["expires_at"] - rotated["created_at"] == 30 * 86400
    refused = _refusal(as_laptop.whoami)
    assert refused.status == 401 and "unknown token" in str(refused.detail)
    assert server.client(rotated["token"]).whoami()["user"] == "dana"
    dana.revoke_token(rotated["id"])
    assert _refusal(server.client(rotated["token"]).whoami).status == 401
    assert laptop["id"] not in [t["id"] for t in dana.tokens()]

    erin = server.client(admin.create_user("erin"))
    for attempt in (erin.revoke_token, erin.rotate_token):
        theirs = _refusal(lambda a=attempt: a(forever["id"]))
        missing = _refusal(lambda a=attempt: a("0123456789ab"))
        assert theirs.status == missing.status == 404
        assert theirs.detail == f"no token {forever['id']!r}"
        assert missing.detail == "no token '0123456789ab'"
    assert _refusal(lambda: erin.tokens(user="dana")).status == 403
    assert _refusal(lambda: erin.tokens(all=True)).status == 403
    assert server.client(forever["token"]).whoami()["user"] == "dana"
    assert forever["id"] in [t["id"] for t in admin.tokens(user="dana")]
    assert {"admin", "dana", "erin"} <= {t["user"] for t in admin.tokens(all=True)}
    admin.revoke_token(forever["id"])
    assert _refusal(server.client(forever["token"]).whoami).status == 401


def test_an_expired_token_gets_a_401_saying_it_expired(shared):
    server = shared
    admin = server.client()
    admin.create_user("frank")
    store = Store.open(database_url(server.home))
    try:
        with store.session() as session:
            row, lapsed = issue_token(session, "frank", "old", expires_at=time.time() - 5)
    finally:
        store.close()
    refused = _refusal(server.client(lapsed).jobs)
    assert refused.status == 401
    assert f"token {row.id} (frank) expired at " in refused.detail
    listed = [t for t in admin.tokens(user="frank") if t["id"] == row.id]
    assert listed[0]["expired"] is True
    short = admin.create_token("short", 1)
    assert server.client(short["token"]).whoami()["user"] == "admin"
    time.sleep(1.1)
    assert "expired" in _refusal(server.client(short["token"]).whoami).detail


def test_request_bodies_are_strict_and_name_the_field(shared):
    server = shared
    raw = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"})
    before = server.client().tokens(all=True)
    [token_id] = [t["id"] for t in before if t["current"]]
    probes = [
        ("/v1/users", {"name": "erin", "admin": "true"}, "admin"),
        ("/v1/users", {"name": "erin", "admin": 1}, "admin"),
        ("/v1/users", {"name": "erin", "rotate": "false"}, "rotate"),
        ("/v1/users", {"name": "erin", "admn": True}, "admn"),
        ("/v1/tokens", {"expires_in_s": "60"}, "expires_in_s"),
        ("/v1/tokens", {"expires_in_s": 1.5}, "expires_in_s"),
        ("/v1/tokens", {"expires_in_s": 0}, "expires_in_s"),
        ("/v1/tokens", {"expires_in_s": True}, "expires_in_s"),
        ("/v1/tokens", {"name": 5}, "name"),
        (f"/v1/tokens/{token_id}/rotate", {"expires_in_s": "never"}, "expires_in_s"),
        ("/v1/jobs", {"yaml": "kind: Job", "workdir": 5}, "workdir"),
        ("/v1/jobs", {"yaml": "kind: Job", "user": "root"}, "user"),
    ]
    for path, body, field in probes:
        answer = raw.post(path, json=body)
        assert answer.status_code == 422, (path, body, answer.text)
        assert [item["loc"] for item in answer.json()["detail"]] == [["body", field]], answer.text
    assert raw.get("/v1/whoami").json()["user"] == "admin", "no probe got through"
    assert server.client().tokens(all=True) == before


def test_the_admin_token_file_is_kept_across_starts_and_replaced_once_revoked(tmp_path):
    store = Store.open(database_url(tmp_path))
    try:
        first = ensure_admin_token(store, tmp_path)
        assert (tmp_path / "admin-token").read_text() == first + "\n"
        assert ensure_admin_token(store, tmp_path) == first, "a second start keeps it"
        with store.session() as session:
            caller = authenticate(session, first)
            [row] = list_tokens(session, "admin")
            assert (row.name, row.expires_at, row.id) == ("admin-token file", None, caller.token_id)
            revoke_token(session, caller, row.id)
        second = ensure_admin_token(store, tmp_path)
        assert second != first and (tmp_path / "admin-token").read_text() == second + "\n"
        with store.session() as session:
            assert authenticate(session, second).admin
    finally:
        store.close()


def test_the_tokens_commands(shared):
    server = shared
    admin = server.client()
    env = {k: v for k, v in os.environ.items() if k not in ("SUAN_HOME",)}
    env.update(SUAN_SERVER=server.url, SUAN_TOKEN=admin.create_user("gina"))

    def suan(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "suan.cli.main", "tokens", *args],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done

    created = suan("create", "--name", "laptop", "--expires", "30d")
    secret = created.stdout.strip()
    assert secret.startswith("suan_") and "\n" not in secret
    [token_id] = [t["id"] for t in server.client(secret).tokens() if t["current"]]
    assert f"token {token_id} for gina, expires " in created.stderr
    listing = suan("list").stdout
    assert token_id in listing and "laptop" in listing and secret not in listing
    rotated = suan("rotate", token_id).stdout.strip()
    assert _refusal(server.client(secret).whoami).status == 401
    [new_id] = [t["id"] for t in server.client(rotated).tokens() if t["current"]]
    assert f"token {new_id} revoked" in suan("revoke", new_id).stdout
    missing = suan("revoke", "0123456789ab", check=False)
    assert missing.returncode == 2 and "no token '0123456789ab'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_lifetime_the_client_cannot_read_is_refused_before_any_request():
    client = Client("http://127.0.0.1:9", token="t")
    for expires, message in (("soon", "'soon' is not a duration"), ("0s", "under a second")):
        with pytest.raises(SuanError, match=message) as refused:
            client.create_token(expires=expires)
        assert "allowed" in str(refused.value) or "never" in str(refused.value)
