"""Control-plane load: submit, drain, cancel and list with a large backlog of pending jobs.

For each backlog size (`--sizes`) it starts a real `suan server --devices 8xH100` (local
engine, 127.0.0.1) in a temporary home, on SQLite or on the PostgreSQL server of `--db` (a
fresh database per size, dropped afterwards), and drives it with `--clients` concurrent
clients (threads, one SDK client each):

1. a blocker job (8 ranks of `sleep`) takes every device, so that what follows stays pending;
2. the backlog: `size` one-rank `command: [true]` jobs, submitted through the API by the
   clients, or -- above `--api-setup-max` -- inserted directly into the store in bulk (rows as
   the API writes them; the output says which);
3. `submit`: `--submits` more submissions through the API at that backlog (p50/p99/max);
4. `list`: the first page (`limit=--page`) by every client; then one walk over every page
   (`limit=1000`) to a cursor 90% deep, and that deep page (`limit=--page`) by every client;
5. `cancel`: `--cancels` pending jobs cancelled by the clients (p50/p99/max);
6. `drain`: the blocker is cancelled and the backlog starts; succeeded jobs are counted (from
   `/metrics`) for `--drain-s` seconds or until none is left: jobs per second.

Targets: submit p99 < 0.2 s, drain >= 50 jobs/s, cancel p99 < 0.2 s, paging in the API.
Progress goes to stderr; stdout gets one JSON object.

    .venv/bin/python bench/control_load.py [--db postgresql://...] [--sizes 10000 100000]
        [--clients 16] [--api-setup-max 20000] [--drain-s 60]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's suan, for the server and the bulk insert
TARGETS = {"submit_p99_s": 0.2, "drain_jobs_per_s": 50.0, "cancel_p99_s": 0.2}
JOB = (
    "apiVersion: suan.ai/v1\nkind: Job\nmetadata: {name: load}\nspec:\n"
    "  replicas: 1\n  accelerators: {count: 1, type: H100}\n  command: ['true']\n"
)
BLOCKER = (
    "apiVersion: suan.ai/v1\nkind: Job\nmetadata: {name: blocker}\nspec:\n"
    "  replicas: 8\n  accelerators: {count: 1, type: H100}\n  command: [sleep, '3600']\n"
)


def say(*words: object) -> None:
    print(time.strftime("%H:%M:%S"), *words, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def latency(values: list[float]) -> dict[str, Any]:
    """p50/p99/max seconds of `values` and how many there were."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "p50_s": round(statistics.median(ordered), 4),
        "p99_s": round(p99, 4),
        "max_s": round(ordered[-1], 4),
    }


# -- databases ---------------------------------------------------------------------------------
@contextlib.contextmanager
def fresh_database(db: str | None) -> Iterator[str | None]:
    """None for SQLite (the server's home), or the URL of a new PostgreSQL database on the
    server of `db`, dropped when the block ends."""
    if not db:
        yield None
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db.replace("postgres://", "postgresql://", 1))
    name = f"suan_load_{secrets.token_hex(4)}"
    admin = url.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- the server ----------------------------------------------------------------------------------
class Server:
    """A `suan server` process in `home`, on the database `db` (None: SQLite in the home)."""

    def __init__(self, home: Path, db: str | None):
        self.home, self.db = home, db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        from suan.client import Client

        argv = [sys.executable, "-m", "suan.cli.main", "server", "--home", str(self.home),
                "--port", str(self.port), "--devices", "8xH100"]
        argv += ["--db", self.db] if self.db else []
        env = {k: v for k, v in os.environ.items() if k not in ("SUAN_TOKEN", "SUAN_SERVER")}
        env["PYTHONPATH"] = str(ROOT)
        log = open(self.home / "server.log", "ab")  # noqa: SIM115 - lives with the server
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + 120
        while not ((self.home / "admin-token").exists() and Client(self.url, "").healthy()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"server did not start; see {self.home / 'server.log'}")
            time.sleep(0.2)

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def store_url(server: Server) -> str:
    from suan.control.store import database_url

    return database_url(server.home, server.db)


# -- the clients ---------------------------------------------------------------------------------
class Clients:
    """`count` SDK clients for one server and a thread per client."""

    def __init__(self, url: str, token: str, count: int):
        from suan.client import Client

        self.clients = [Client(url, token, timeout=120) for _ in range(count)]
        self.pool = ThreadPoolExecutor(count)
        self.errors: dict[str, dict[str, int]] = {}

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients:
            client.close()

    def run(self, total: int, call: Callable[[Any, int], Any], label: str) -> list[float]:
        """Make `total` calls `call(client, i)` spread over the clients; the latencies of
        those that succeeded. A failed call is counted in `errors[label]` (by its message's
        first line). Progress on stderr every 5 s."""
        from suan.errors import SuanError

        latencies: list[float] = []
        counter = iter(range(total))
        lock = threading.Lock()
        last = [time.monotonic()]

        def worker(client: Any) -> None:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                began = time.perf_counter()
                try:
                    call(client, index)
                except SuanError as exc:
                    with lock:
                        failed = self.errors.setdefault(label, {})
                        words = str(exc).splitlines()[0][:120]
                        failed[words] = failed.get(words, 0) + 1
                    continue
                took = time.perf_counter() - began
                with lock:
                    latencies.append(took)
                    if time.monotonic() - last[0] > 5:
                        last[0] = time.monotonic()
                        say(f"  {label}: {len(latencies)}/{total}")

        for future in [self.pool.submit(worker, c) for c in self.clients]:
            future.result()
        return latencies


def metrics(client: Any) -> dict[str, int]:
    """Jobs per state (over every queue), from `/metrics` (the client holds an admin token)."""
    text = client._http.get("/metrics").text
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("suan_jobs{"):
            state = line.split('state="', 1)[1].split('"', 1)[0]
            counts[state] = counts.get(state, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


# -- the backlog -----------------------------------------------------------------------------------
def bulk_insert(server: Server, count: int) -> list[str]:
    """`count` pending `load` jobs written straight into the store, as the API writes them."""
    from sqlalchemy import insert

    from suan.control.lifecycle import JobState
    from suan.control.models import EventRow, JobRow
    from suan.control.store import Store
    from suan.control.submit import raw_documents

    document = json.dumps(raw_documents(JOB)[0])
    store = Store.open(store_url(server))
    ids: list[str] = []
    seen: set[str] = set()
    try:
        while len(ids) < count:
            batch = []
            while len(batch) < min(5000, count - len(ids)):
                job_id = f"load-{secrets.token_hex(3)}"
                if job_id not in seen:
                    seen.add(job_id)
                    batch.append(job_id)
            now = time.time()
            jobs = [dict(id=i, name="load", user="admin", queue="default",
                         state=JobState.PENDING.value, document=document,
                         checkpoint_dir=str(server.home / "jobs" / i / "checkpoints"),
                         workdir="", submit_time=now, attempt=0, restarts=0,
                         reason="waiting for the scheduler", reason_code="",
                         cancel_requested=False, stop_reason="") for i in batch]
            events = [dict(job_id=i, time=now, kind="submitted",
                           message="submitted by admin as admin to queue default")
                      for i in batch]
            with store.session() as session:
                session.execute(insert(JobRow), jobs)
                session.execute(insert(EventRow), events)
            ids += batch
            say(f"  bulk insert: {len(ids)}/{count}")
    finally:
        store.close()
    return ids


def submit_backlog(clients: Clients, count: int) -> tuple[list[str], list[float]]:
    ids: list[str] = []
    lock = threading.Lock()

    def one(client: Any, _: int) -> None:
        new = client.submit(JOB)
        with lock:
            ids.extend(new)

    latencies = clients.run(count, one, "submit backlog")
    return ids, latencies


def wait_running(client: Any, job_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.describe(job_id)["state"] != "running":
        if time.monotonic() > deadline:
            raise SystemExit(f"the blocker {job_id} did not start")
        time.sleep(0.1)


# -- listing ---------------------------------------------------------------------------------------
def list_page(client: Any, limit: int, cursor: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["after"] = cursor
    return client._request("GET", "/v1/jobs", params=params)


def measure_list(clients: Clients, size: int, page: int, per_client: int) -> dict[str, Any]:
    """First page by every client; a walk over all pages to a cursor 90% deep; that page."""
    count = per_client * len(clients.clients)
    first = clients.run(count, lambda c, _: list_page(c, page), "list first page")
    answer = list_page(clients.clients[0], page)
    report: dict[str, Any] = {"page_size": page, "first_page": latency(first),
                              "first_page_jobs": len(answer["jobs"]),
                              "paging": "next" in answer}
    if "next" not in answer:
        report["note"] = "the API has no cursor paging: no deep page"
        return report
    cursor, seen, walk, deep_cursor = None, 0, [], None
    began = time.perf_counter()
    while True:
        sent = time.perf_counter()
        answer = list_page(clients.clients[0], 1000, cursor)
        walk.append(time.perf_counter() - sent)
        seen += len(answer["jobs"])
        cursor = answer.get("next")
        if deep_cursor is None and seen >= 0.9 * size and cursor:
            deep_cursor = cursor
        if not cursor:
            break
        if len(walk) % 20 == 0:
            say(f"  list walk: {seen} jobs")
    report["walk"] = {"jobs": seen, "pages_of_1000": latency(walk),
                      "total_s": round(time.perf_counter() - began, 2)}
    if deep_cursor:
        deep = clients.run(count, lambda c, _: list_page(c, page, deep_cursor), "list deep page")
        report["deep_page"] = latency(deep)
        report["deep_page_at"] = "90% of the list"
    return report


# -- one size ------------------------------------------------------------------------------------
def run_size(args: argparse.Namespace, size: int) -> dict[str, Any]:
    from suan.client import Client

    work = Path(tempfile.mkdtemp(prefix="suan-load-"))
    home = work / "home"
    home.mkdir()
    result: dict[str, Any] = {"pending": size}
    with fresh_database(args.db) as db:
        server = Server(home, db)
        try:
            say(f"[{size}] starting the server ({'postgresql' if db else 'sqlite'})")
            server.start()
            control = Client(server.url, server.token, timeout=120)
            [blocker] = control.submit(BLOCKER)
            wait_running(control, blocker)
            clients = Clients(server.url, server.token, args.clients)
            try:
                result.update(measure_size(args, size, server, control, clients, blocker))
            finally:
                clients.close()
                control.close()
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
    return result


def measure_size(args: argparse.Namespace, size: int, server: Server, control: Any,
                 clients: Clients, blocker: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    cpu0 = server.cpu_s()
    began = time.monotonic()
    if size <= args.api_setup_max:
        say(f"[{size}] submitting the backlog through the API")
        ids, setup = submit_backlog(clients, size)
        result["backlog"] = {"how": "submitted through the API by the clients",
                             "submit": latency(setup)}
    else:
        say(f"[{size}] inserting the backlog into the store")
        ids = bulk_insert(server, size)
        result["backlog"] = {"how": "inserted directly into the store in bulk "
                                    "(rows as the API writes them)"}
    result["backlog"]["s"] = round(time.monotonic() - began, 1)
    time.sleep(2)  # let the reconciler see the backlog
    say(f"[{size}] submit: {args.submits} submissions at the backlog")
    cpu1 = server.cpu_s()
    more, submits = submit_backlog(clients, args.submits)
    result["submit"] = latency(submits)
    result["submit"]["server_cpu_s"] = round(server.cpu_s() - cpu1, 1)
    say(f"[{size}] list")
    result["list"] = measure_list(clients, size + args.submits, args.page, args.list_calls)
    say(f"[{size}] cancel: {args.cancels} pending jobs")
    victims = (ids + more)[-args.cancels:]
    cancels = clients.run(len(victims), lambda c, i: c.cancel(victims[i]), "cancel")
    result["cancel"] = latency(cancels)
    result["drain"] = drain(args, server, control, blocker)
    result["server_cpu_s_total"] = round(server.cpu_s() - cpu0, 1)
    result["errors"] = clients.errors
    return result


def drain(args: argparse.Namespace, server: Server, control: Any, blocker: str) -> dict[str, Any]:
    """Cancel the blocker; count succeeded jobs for `--drain-s` or until none waits."""
    say("drain: cancelling the blocker")
    before = metrics(control)
    base = before.get("succeeded", 0)
    cpu0 = server.cpu_s()
    began = time.monotonic()
    control.cancel(blocker)
    last_say, counts = began, before
    while time.monotonic() - began < args.drain_s:
        time.sleep(0.5)
        counts = metrics(control)
        if not any(counts.get(s, 0) for s in ("pending", "scheduled", "running")):
            break
        if time.monotonic() - last_say > 5:
            last_say = time.monotonic()
            say(f"  drain: {counts.get('succeeded', 0) - base} succeeded, "
                f"{counts.get('pending', 0)} pending")
    elapsed = time.monotonic() - began
    done = counts.get("succeeded", 0) - base
    return {
        "window_s": round(elapsed, 1),
        "succeeded": done,
        "failed": counts.get("failed", 0) - before.get("failed", 0),
        "pending_left": counts.get("pending", 0),
        "jobs_per_s": round(done / elapsed, 2),
        "server_cpu_share": round((server.cpu_s() - cpu0) / elapsed, 2),
    }


def verdicts(results: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for entry in results:
        size = entry["pending"]
        out[str(size)] = {
            "submit_p99": entry["submit"]["p99_s"] < TARGETS["submit_p99_s"],
            "drain": entry["drain"]["jobs_per_s"] >= TARGETS["drain_jobs_per_s"],
            "cancel_p99": entry["cancel"]["p99_s"] < TARGETS["cancel_p99_s"],
            "paging": entry["list"]["paging"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="postgresql://... (default: SQLite)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--api-setup-max", type=int, default=20_000,
                        help="larger backlogs are inserted into the store in bulk")
    parser.add_argument("--submits", type=int, default=800)
    parser.add_argument("--cancels", type=int, default=400)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--list-calls", type=int, default=5, help="per client and page")
    parser.add_argument("--drain-s", type=float, default=60.0)
    args = parser.parse_args()
    results = [run_size(args, size) for size in args.sizes]
    report = {
        "benchmark": "control_load",
        "store": "postgresql" if args.db else "sqlite",
        "clients": args.clients,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "targets": TARGETS,
        "results": results,
        "meets_targets": verdicts(results),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
