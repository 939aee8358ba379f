"""Chaos for the standby control plane: kill and pause the leader under load, count what broke.

Starts `--servers` real `suan server` processes (local engine, `--devices 8xH100`) sharing one
home and one PostgreSQL store, so that one leads and the others stand by. A feeder submits short
1-rank jobs without pause (each rank appends `<attempt> <rank> <pid>` to its checkpoint
directory's `launches` and sleeps `--job-s`). Then, `--kills` times, at a random moment (so
some land mid-launch) the current leader gets `kill -9` and is started again as a standby;
`--pauses` times it gets SIGSTOP for `--pause-s` seconds, then SIGCONT. Each time the takeover
is timed: from the kill (or the stop) until another server answers `GET /v1/leader` as leader.
At the end the feeder stops, every job is awaited, `--long` jobs that sleep are submitted,
started and cancelled, and the run counts:

- `lost`: submitted jobs that did not succeed;
- `launched_twice`: (job, attempt, rank) started more than once;
- `untracked_after_cancel`: processes of this home's ranks (found by their `SUAN_LAUNCH` tag)
  still alive after every job is final;
- `takeover_s`: each takeover time (max and median too).

stdout gets one JSON object; progress goes to stderr. Everything started is stopped in `finally`.

    .venv/bin/python bench/control_chaos.py --db postgresql://postgres@127.0.0.1:55432/suan_test
        [--kills 20] [--pauses 2] [--lease 3] [--seconds 180] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from suan.client import ApiError, Client  # noqa: E402
from suan.control.store import database_url  # noqa: E402
from suan.exec.isolation import TAG, scope_of  # noqa: E402

RANK = (
    "import os, time; d = os.environ['SUAN_CHECKPOINT_DIR']; "
    "open(os.path.join(d, 'launches'), 'a').write("
    "f\"{os.environ['SUAN_RESTART_COUNT']} {os.environ['RANK']} {os.getpid()}\\n\"); "
    "time.sleep(float(os.environ['JOB_S']))"
)


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def job_yaml(name: str, seconds: float) -> str:
    return (
        "apiVersion: suan.ai/v1\nkind: Job\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  replicas: 1\n  accelerators: {count: 1, type: H100}\n"
        f"  command: [python, -c, {json.dumps(RANK)}]\n"
        f'  env: {{JOB_S: "{seconds}"}}\n'
        "  maxRestarts: 5\n"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Member:
    """One `suan server` of the group: its port and process."""

    def __init__(self, home: Path, db: str, lease_s: float, index: int):
        self.home, self.db, self.lease_s, self.index = home, db, lease_s, index
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "suan.cli.main", "server", "--home", str(self.home),
                "--port", str(self.port), "--devices", "8xH100", "--db", self.db,
                "--tick", "0.1", "--restart-backoff", "0.3", "--stop-grace", "2",
                "--lease", str(self.lease_s)]
        env = {k: v for k, v in os.environ.items() if k not in ("SUAN_TOKEN", "SUAN_SERVER")}
        log = open(self.home.parent / f"server-{self.index}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.index} exited; see its log")
            if (self.home / "admin-token").exists() and Client(self.url, token="").healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"server {self.index} did not start")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, number: int) -> None:
        if self.alive():
            os.kill(self.process.pid, number)
            if number == signal.SIGKILL:
                self.process.wait()

    def leads(self, token: str) -> bool:
        try:
            with Client(self.url, token=token, timeout=2.0) as client:
                return bool(client.leader().get("leading"))
        except (ApiError, OSError, Exception):  # a stopped or dead server does not answer
            return False


def leader_of(members: list[Member], token: str, timeout: float = 60.0,
              besides: Member | None = None) -> Member:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for member in members:
            if member is not besides and member.alive() and member.leads(token):
                return member
        time.sleep(0.05)
    raise RuntimeError(f"no leader after {timeout}s")


class Feeder(threading.Thread):
    """Submits short jobs until told to stop; keeps their ids."""

    def __init__(self, members: list[Member], token: str, job_s: float, every_s: float):
        super().__init__(daemon=True)
        self.members, self.token, self.job_s, self.every_s = members, token, job_s, every_s
        self.ids: list[str] = []
        self.refused = 0
        self.halt = threading.Event()

    def run(self) -> None:
        count = 0
        while not self.halt.is_set():
            member = random.choice([m for m in self.members if m.alive()] or self.members)
            try:
                with Client(member.url, token=self.token, timeout=5.0) as client:
                    self.ids += client.submit(job_yaml(f"c{count}", self.job_s))
                count += 1
            except Exception:  # a server being killed: the submit is retried on another
                self.refused += 1
            self.halt.wait(self.every_s)


def tagged_alive(scope: str) -> list[int]:
    """Pids whose environment carries this home's launch tag."""
    wanted = f"{TAG}={scope}/".encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    if any(v.startswith(wanted) for v in handle.read().split(b"\0")):
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def final_states(members: list[Member], token: str, ids: list[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        member = next((m for m in members if m.alive()), members[0])
        with Client(member.url, token=token, timeout=10.0) as client:
            for job_id in ids:
                if states.get(job_id) not in ("succeeded", "failed", "cancelled"):
                    states[job_id] = client.describe(job_id)["state"]
        if all(s in ("succeeded", "failed", "cancelled") for s in states.values()):
            break
        time.sleep(0.5)
    return states


def launched_twice(home: Path, ids: list[str]) -> int:
    twice = 0
    for job_id in ids:
        path = home / "jobs" / job_id / "checkpoints" / "launches"
        keys = [tuple(line.split()[:2]) for line in path.read_text().splitlines()] \
            if path.exists() else []
        twice += len(keys) - len(set(keys))
    return twice


def fresh_database(url: str) -> tuple[str, str]:
    """A new database beside `url`'s (dropped at the end): (its URL, its name)."""
    base = database_url(None, url)
    name = f"suan_chaos_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name, name


def drop_database(url: str, name: str) -> None:
    admin = sa.create_engine(database_url(None, url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def chaos(args: argparse.Namespace, home: Path, db: str) -> dict:
    members = [Member(home, db, args.lease, i) for i in range(args.servers)]
    try:
        return _run(args, home, members)
    finally:
        for member in members:
            member.signal(signal.SIGCONT)
            member.signal(signal.SIGKILL)
        for pid in tagged_alive(scope_of(home)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _run(args: argparse.Namespace, home: Path, members: list[Member]) -> dict:
    rng = random.Random(args.seed)
    members[0].start()
    for member in members[1:]:
        member.start()
    token = (home / "admin-token").read_text().strip()
    leader = leader_of(members, token)
    say(f"{len(members)} servers up; server {leader.index} leads")
    feeder = Feeder(members, token, args.job_s, args.submit_every)
    feeder.start()
    takeovers: list[float] = []
    events = ["kill"] * args.kills + ["pause"] * args.pauses
    rng.shuffle(events)
    began = time.monotonic()
    for number, event in enumerate(events, 1):
        if time.monotonic() - began > args.seconds:
            say(f"time is up after {number - 1} events")
            break
        time.sleep(rng.uniform(0.2, args.gap))
        old = leader_of(members, token)
        hit = time.monotonic()
        if event == "kill":
            old.signal(signal.SIGKILL)
        else:
            old.signal(signal.SIGSTOP)
        leader = leader_of(members, token, besides=old)
        takeovers.append(time.monotonic() - hit)
        say(f"{number}/{len(events)} {event} of server {old.index}: server {leader.index} "
            f"leads after {takeovers[-1]:.2f}s")
        if event == "kill":
            old.start()
        else:
            time.sleep(max(0.0, args.pause_s - (time.monotonic() - hit)))
            old.signal(signal.SIGCONT)
    feeder.halt.set()
    feeder.join()
    say(f"{len(feeder.ids)} jobs submitted; waiting for them")
    states = final_states(members, token, feeder.ids, timeout=300)
    leader = leader_of(members, token)
    with Client(leader.url, token=token) as client:
        long_ids = [client.submit(job_yaml(f"long{i}", 300))[0] for i in range(args.long)]
        deadline = time.monotonic() + 60
        while any(client.describe(j)["state"] != "running" for j in long_ids):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for job_id in long_ids:
            client.cancel(job_id)
    cancelled = final_states(members, token, long_ids, timeout=60)
    time.sleep(1.0)
    left = tagged_alive(scope_of(home))
    lost = [j for j, s in states.items() if s != "succeeded"]
    return {
        "servers": len(members),
        "lease_s": args.lease,
        "kills": events.count("kill"),
        "pauses": events.count("pause"),
        "jobs": len(feeder.ids),
        "submits_refused_during_kills": feeder.refused,
        "lost": len(lost),
        "lost_states": {j: states[j] for j in lost[:10]},
        "launched_twice": launched_twice(home, feeder.ids + long_ids),
        "cancelled": sum(s == "cancelled" for s in cancelled.values()),
        "untracked_after_cancel": len(left),
        "takeover_s": [round(t, 2) for t in takeovers],
        "takeover_max_s": round(max(takeovers), 2) if takeovers else None,
        "takeover_median_s": round(statistics.median(takeovers), 2) if takeovers else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("SUAN_TEST_POSTGRES_URL"),
                        help="a PostgreSQL URL; a fresh database is made beside it")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--pauses", type=int, default=2)
    parser.add_argument("--pause-s", type=float, default=8.0)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--gap", type=float, default=3.0, help="most seconds between events")
    parser.add_argument("--seconds", type=float, default=180.0, help="stop the events after")
    parser.add_argument("--job-s", type=float, default=0.5)
    parser.add_argument("--submit-every", type=float, default=0.1)
    parser.add_argument("--long", type=int, default=4, help="jobs started, then cancelled")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.db or not args.db.startswith(("postgresql://", "postgres://")):
        sys.exit("--db must be a PostgreSQL URL (eval \"$(bash scripts/ci-postgres.sh)\")")
    random.seed(args.seed)
    db, name = fresh_database(args.db)
    scratch = Path(tempfile.mkdtemp(prefix="suan-chaos-"))
    home = scratch / "home"
    home.mkdir()
    try:
        result = chaos(args, home, db)
    finally:
        drop_database(args.db, name)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
