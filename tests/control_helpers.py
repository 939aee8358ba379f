"""Real control-plane servers for the tests: a `suan server` subprocess on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from suan.client import Client

JOB_SCRIPT = Path(__file__).parent / "control_job.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One `suan server` process for `home`; `start()` again after `kill()` to restart it."""

    def __init__(
        self,
        home: Path,
        devices: str = "8xH100",
        db: str | None = None,
        config: Path | None = None,
    ):
        self.home = home
        self.devices = devices
        self.db = db
        self.config = config
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def start(self, timeout: float = 30.0) -> Server:
        argv = [
            sys.executable,
            "-m",
            "suan.cli.main",
            "server",
            "--home",
            str(self.home),
            "--port",
            str(self.port),
            *(["--config", str(self.config)] if self.config else ["--devices", self.devices]),
            "--tick",
            "0.1",
            "--restart-backoff",
            "0.3",
            "--stop-grace",
            "2",
        ]
        argv += ["--db", self.db] if self.db else []
        env = {k: v for k, v in os.environ.items() if k not in ("SUAN_TOKEN", "SUAN_SERVER")}
        log = open(self.home / "server.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.home / "server.log").read_text()[-3000:])
            if (self.home / "admin-token").exists() and Client(self.url, token="").healthy():
                return self
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token=self.token if token is None else token)

    def kill(self) -> None:
        """SIGKILL, as a crash would: the ranks keep running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        kill_ranks(self.home)


def kill_ranks(home: Path) -> None:
    """SIGKILL the process group of every rank ever launched under `home` (test cleanup)."""
    for pid_file in home.glob("jobs/*/run/*/rank-*.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.killpg(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def job_yaml(
    name: str,
    ranks: int = 4,
    devices: int = 1,
    steps: int = 10,
    step_s: float = 0.1,
    extra: str = "",
    priority: str = "normal",
    queue: str = "default",
    preemptible: bool = True,
) -> str:
    """A Job document running tests/control_job.py on `ranks` ranks."""
    return (
        textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          queue: {queue}
          priority: {priority}
          preemptible: {str(preemptible).lower()}
          replicas: {ranks}
          accelerators: {{count: {devices}, type: H100}}
          command: [python, {JOB_SCRIPT}]
          env: {{STEPS: "{steps}", STEP_S: "{step_s}"}}
          maxRestarts: 3
        """)
        + extra
    )


def wait_for(predicate, timeout: float = 30.0, every: float = 0.1, what: str = "condition"):
    """Poll `predicate()` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def running_server(home: Path, **options) -> Iterator[Server]:
    """A server started in the new directory `home` (Server's `options`), stopped on exit."""
    running = Server(home, **options)
    running.home.mkdir()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def server(tmp_path):
    """A fresh server with 8 simulated H100 slots and a SQLite store."""
    with running_server(tmp_path / "home") as running:
        yield running


def suan(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run the `suan` command with `env`; an AssertionError quoting its output when it fails
    and `check`."""
    result = subprocess.run(
        [sys.executable, "-m", "suan.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"suan {' '.join(args)}: {result.stdout}{result.stderr}")
    return result
