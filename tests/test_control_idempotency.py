"""Idempotent submissions against real `suan server` processes: a repeated Idempotency-Key
replays the first answer, a reused key with another request is a 409, concurrent requests
with one key (SQLite and PostgreSQL) submit once, and a request whose answer is lost (a
dropped connection, the SDK's own retry through a proxy that drops the first answer, the CLI
run twice) leaves exactly one job."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from control_helpers import Server, free_port, job_yaml, wait_for

from suan.client import Client
from suan.control.idempotency import RETENTION_S, claim, remember, replay, request_digest
from suan.control.models import IdempotencyRow
from suan.control.store import Store, database_url


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """One SQLite server for the module (each test uses job names and keys of its own)."""
    home = tmp_path_factory.mktemp("idempotency") / "home"
    home.mkdir()
    running = Server(home).start()
    yield running
    running.stop()


def parked_job(name: str) -> str:
    """A job that never fits 8 devices, so it stays pending (nothing runs)."""
    return job_yaml(name, ranks=2, devices=8)


def post(server: Server, text: str, key: str | None, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or server.token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"yaml": text, "workdir": "/tmp"}
    return httpx.post(f"{server.url}/v1/jobs", json=body, headers=headers, timeout=30)


def jobs_named(server: Server, name: str) -> list[str]:
    with server.client() as client:
        return [job["id"] for job in client.jobs(all=True) if job["name"] == name]


def test_a_repeated_key_replays_the_first_answer_and_another_request_is_a_409(server):
    first = post(server, parked_job("once"), "key-1")
    again = post(server, parked_job("once"), "key-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert jobs_named(server, "once") == [first.json()["jobs"][0]["id"]]

    other = post(server, parked_job("other"), "key-1")
    assert other.status_code == 409
    assert "different request" in other.json()["detail"] and "key-1" in other.json()["detail"]
    assert jobs_named(server, "other") == []

    # the workdir is part of the request
    moved = httpx.post(
        f"{server.url}/v1/jobs",
        json={"yaml": parked_job("once"), "workdir": "/var/tmp"},
        headers={"Authorization": f"Bearer {server.token}", "Idempotency-Key": "key-1"},
    )
    assert moved.status_code == 409


def test_keys_are_per_user_and_requests_without_a_key_are_not_deduplicated(server):
    with server.client() as admin:
        bob = admin.create_user("bob")
    mine = post(server, parked_job("shared-key"), "same")
    bobs = post(server, parked_job("shared-key"), "same", token=bob)
    assert mine.status_code == bobs.status_code == 201
    assert mine.json()["jobs"][0]["id"] != bobs.json()["jobs"][0]["id"]
    assert post(server, parked_job("no-key"), None).status_code == 201
    assert post(server, parked_job("no-key"), None).status_code == 201
    assert len(jobs_named(server, "no-key")) == 2


def test_a_refused_request_stores_nothing_and_bad_keys_are_422(server):
    bad = post(server, parked_job("Bad_Name"), "k-refused")
    assert bad.status_code == 422
    assert post(server, parked_job("good-name"), "k-refused").status_code == 201
    for key in ["", "a b", "x" * 256, "é"]:
        response = httpx.post(
            f"{server.url}/v1/jobs",
            json={"yaml": parked_job("k"), "workdir": "/tmp"},
            headers={"Authorization": f"Bearer {server.token}",
                     "Idempotency-Key": key.encode("utf-8")},
        )
        assert response.status_code == 422, key
        assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def concurrent_submissions(server: Server, count: int, key: str, name: str) -> list[httpx.Response]:
    """`count` threads post the same keyed request at once (released by one barrier)."""
    barrier = threading.Barrier(count)
    answers: list[httpx.Response] = []

    def one() -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            answers.append(
                http.post(
                    f"{server.url}/v1/jobs",
                    json={"yaml": parked_job(name), "workdir": "/tmp"},
                    headers={"Authorization": f"Bearer {server.token}", "Idempotency-Key": key},
                )
            )

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return answers


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_server(request, tmp_path, server) -> Iterator[Server]:
    """The module's SQLite server, or one on its own schema of the PostgreSQL test server."""
    if request.param == "sqlite":
        yield server
        return
    home = tmp_path / "home"
    home.mkdir()
    url = os.environ.get("SUAN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip('no PostgreSQL server: eval "$(bash scripts/ci-postgres.sh)"')
    import sqlalchemy as sa
    schema = f"idem_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(database_url(None, url))
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    running = Server(home, db=f"{url}?options=-csearch_path%3D{schema}")
    try:
        yield running.start()
    finally:
        running.stop()
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_concurrent_requests_with_one_key_submit_once(any_db_server):
    for round_ in range(3):
        name = f"race-{round_}"
        answers = concurrent_submissions(any_db_server, 6, f"race-key-{round_}", name)
        assert [answer.status_code for answer in answers] == [201] * 6, [a.text for a in answers]
        ids = {answer.json()["jobs"][0]["id"] for answer in answers}
        assert len(ids) == 1
        assert jobs_named(any_db_server, name) == list(ids)
        replayed = [a for a in answers if a.headers.get("Idempotent-Replayed") == "true"]
        assert len(replayed) == 5


def raw_request(server: Server, text: str, key: str) -> bytes:
    body = httpx.Request("POST", "http://x", json={"yaml": text, "workdir": "/tmp"}).read()
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.token}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_a_connection_dropped_before_the_answer_then_a_retry_leaves_one_job(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(raw_request(server, parked_job("dropped"), "drop-1"))
    # the server goes on with the request it read; the client never saw the answer
    [job_id] = wait_for(lambda: jobs_named(server, "dropped"), what="the dropped submission")
    retry = post(server, parked_job("dropped"), "drop-1")
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["jobs"][0]["id"] == job_id
    assert jobs_named(server, "dropped") == [job_id]


class AnswerDroppingProxy:
    """A TCP proxy to `target` that forwards the first request, waits for the server's answer
    and closes the client's connection without passing it on; later connections are piped.
    `requests` holds the bytes of every request it forwarded."""

    def __init__(self, target: int):
        self.target = target
        self.port = free_port()
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            if self.connections == 1:
                threading.Thread(target=self._drop, args=(client, upstream), daemon=True).start()
            else:
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _drop(self, client: socket.socket, upstream: socket.socket) -> None:
        request = client.recv(1 << 20)
        while b"\r\n\r\n" not in request or len(request) < _expected_length(request):
            request += client.recv(1 << 20)
        self.requests.append(request)
        upstream.sendall(request)
        upstream.recv(1 << 16)  # the server answered, so it has committed
        client.close()
        upstream.close()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                if source.getpeername()[1] != self.target:
                    self.requests.append(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def _expected_length(request: bytes) -> int:
    head, _, _ = request.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return len(head) + 4


def _key_of(request: bytes) -> str | None:
    for line in request.split(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"idempotency-key:"):
            return line.split(b":", 1)[1].strip().decode()
    return None


def test_the_sdk_retries_a_lost_answer_with_its_key_and_gets_the_first_jobs(server):
    proxy = AnswerDroppingProxy(server.port)
    try:
        with Client(f"http://127.0.0.1:{proxy.port}", token=server.token) as client:
            ids = client.submit(parked_job("lost-answer"))
    finally:
        proxy.close()
    assert ids == jobs_named(server, "lost-answer") and len(ids) == 1
    keyed = [key for key in map(_key_of, proxy.requests) if key is not None]
    assert proxy.connections == 2 and len(keyed) == 2 and keyed[0] == keyed[1]
    with server.client() as client:  # another call is another submission: a new key
        [second] = client.submit(parked_job("lost-answer"))
    assert sorted(jobs_named(server, "lost-answer")) == sorted([*ids, second])


def test_the_cli_passes_its_idempotency_key(server, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text(parked_job("cli-key"))
    env = {**os.environ, "SUAN_SERVER": server.url, "SUAN_TOKEN": server.token}

    def submit(key: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "suan.cli.main", "submit", str(spec), "--idempotency-key", key],
            env=env, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1],
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    first = submit("cli-1")
    assert submit("cli-1") == first
    assert jobs_named(server, "cli-key") == [first]
    assert submit("cli-2") != first


def test_keys_are_kept_a_day_and_pruned_when_a_new_key_is_claimed(tmp_path):
    store = Store.open(database_url(tmp_path))
    digest = request_digest("yaml", "/tmp")
    try:
        with store.session() as session:
            assert claim(session, "alice", "old", digest, now=1000.0)
            remember(session, "alice", "old", 201, {"jobs": [], "queues": []})
        with store.session() as session:
            later = 1000.0 + RETENTION_S - 1
            assert replay(session, "alice", "old", digest, later).body == {"jobs": [], "queues": []}
            assert replay(session, "bob", "old", digest, later) is None
        with store.session() as session:
            expired = 1000.0 + RETENTION_S + 1
            assert replay(session, "alice", "old", digest, expired) is None
            assert claim(session, "alice", "new", digest, now=expired)
        with store.session() as session:
            assert [row.key for row in session.query(IdempotencyRow)] == ["new"]
    finally:
        store.close()
