"""Where every executor keeps a job's files under `home` (SUAN_HOME, on storage every node sees).

For job J, attempt A, rank R:

    jobs/J/logs/rank-R.log          the rank's stdout and stderr, appended across attempts
    jobs/J/run/A/rank-R.exit        its exit code, written by the shim (suan.exec._shim)
    jobs/J/run/A/rank-R.pid         "pid start_ticks node devices", written by who started it
    jobs/J/run/A/launch.json        what an engine-side rank wrapper needs (suan.exec._rank)

Engines that run ranks on other machines (Slurm, Ray) need `home` to be the same path on every
node; the server checks that at start-up with a probe job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from suan.cluster.snapshot import ReplicaPlacement
    from suan.exec import JobLaunch, RankHandle


SHIM = Path(__file__).with_name("_shim.py")
"""Runs a rank's command and records its exit code (stdlib only: `python -I -S`)."""
RANK_STARTER = Path(__file__).with_name("_rank.py")
"""Starts one rank on a node from `launch.json` (stdlib only: `python -I -S`)."""


class JobFiles:
    """Paths of one home's job files, and reading a rank's log from an offset."""

    def __init__(self, home: Path):
        self.home = Path(home)

    def job_dir(self, job_id: str) -> Path:
        return self.home / "jobs" / job_id

    def run_dir(self, job_id: str, attempt: int) -> Path:
        return self.job_dir(job_id) / "run" / str(attempt)

    def log_path(self, job_id: str, rank: int) -> Path:
        return self.job_dir(job_id) / "logs" / f"rank-{rank}.log"

    def exit_path(self, job_id: str, attempt: int, rank: int) -> Path:
        return self.run_dir(job_id, attempt) / f"rank-{rank}.exit"

    def pid_path(self, job_id: str, attempt: int, rank: int) -> Path:
        return self.run_dir(job_id, attempt) / f"rank-{rank}.pid"

    def prepare(self, job: JobLaunch) -> Path:
        """Make the attempt's run directory, the log directory and the checkpoint directory;
        when the job runs as another account, hand them to it (the job directory 0700, so no
        other account reads the job's files). Returns the run directory."""
        run_dir = self.run_dir(job.job_id, job.attempt)
        logs = self.log_path(job.job_id, 0).parent
        for directory in (run_dir, logs):
            directory.mkdir(parents=True, exist_ok=True)
        owned = [self.job_dir(job.job_id), run_dir.parent, run_dir, logs, *logs.glob("*.log")]
        if job.checkpoint_dir:
            owned.append(self._checkpoint_dir(job))
        if job.run_as is not None:
            for path in owned:
                os.chown(path, job.run_as.uid, job.run_as.gid)
            self.job_dir(job.job_id).chmod(0o700)
            for shared in (self.home, self.home / "jobs", self.home / "users"):
                if shared.exists():  # other accounts may pass through, not list or read
                    shared.chmod(0o711)
        return run_dir

    def remote_handles(
        self,
        job_id: str,
        attempt: int,
        placement: Sequence[ReplicaPlacement],
        engine_id: Callable[[int], str],
    ) -> list[RankHandle]:
        """Handles of ranks that run on other machines (no pid here): engine_id(rank) names
        each rank's launch on the engine."""
        from suan.exec import RankHandle

        return [
            RankHandle(
                job_id,
                attempt,
                rank,
                replica.node,
                replica.devices,
                0,
                0,
                str(self.log_path(job_id, rank)),
                engine_id=engine_id(rank),
            )
            for rank, replica in enumerate(placement)
        ]

    def rank_entry(self, job: JobLaunch, rank: int, node: str, devices: int, env: dict) -> dict:
        """One rank of `launch.json`: where it runs, its environment and its files."""
        return {
            "node": node,
            "devices": devices,
            "env": env,
            "log": str(self.log_path(job.job_id, rank)),
            "exit": str(self.exit_path(job.job_id, job.attempt, rank)),
            "devices_file": str(self.devices_path(job.job_id, job.attempt, rank)),
        }

    def devices_path(self, job_id: str, attempt: int, rank: int) -> Path:
        """The device ids the engine gave a rank, as suan.exec._rank wrote them."""
        return self.run_dir(job_id, attempt) / f"rank-{rank}.devices"

    def assigned_devices(self, job_id: str, attempt: int, rank: int) -> tuple[int, ...] | None:
        """The device ids the engine gave a rank, when they were read back; else None."""
        try:
            text = self.devices_path(job_id, attempt, rank).read_text()
            return tuple(int(item) for item in text.split(",") if item.strip())
        except (OSError, ValueError):
            return None

    def record_devices(self, job_id: str, attempt: int, rank: int, ids: str) -> None:
        """Write the ids an engine reports for a rank ("0,3"), if they are device indices."""
        items = [item.strip() for item in ids.split(",") if item.strip()]
        if items and all(item.isdigit() for item in items):
            _replace_text(self.devices_path(job_id, attempt, rank), ",".join(items) + "\n")

    def record_exit(self, job_id: str, attempt: int, rank: int, code: int) -> None:
        """Write a rank's exit code where the shim would have (for engines that learn it)."""
        path = self.exit_path(job_id, attempt, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace_text(path, f"{code}\n")

    def exit_count(self, job_id: str, attempt: int) -> int:
        """How many ranks of an attempt have written their exit code."""
        return sum(1 for _ in self.run_dir(job_id, attempt).glob("*.exit"))

    def _checkpoint_dir(self, job: JobLaunch) -> Path:
        """The job's checkpoint directory, made if missing. Refused (EngineError) when its path
        goes through a symlink, or, for a job run as an account, when it exists and belongs to
        another account: the server would otherwise hand someone else's files to this job."""
        from suan.exec import EngineError

        path = Path(os.path.abspath(job.checkpoint_dir))
        if os.path.realpath(path) != str(path):
            raise EngineError(f"checkpoint dir {path} goes through a symbolic link: refused")
        if job.run_as is not None and path.exists():
            owner = path.stat().st_uid
            if owner not in (job.run_as.uid, os.geteuid()):
                raise EngineError(f"checkpoint dir {path} belongs to another account: refused")
        made = [parent for parent in (path, *path.parents) if not parent.exists()]
        path.mkdir(parents=True, exist_ok=True)
        if job.run_as is not None:
            for directory in made:  # what the server made for the job is the job's
                os.chown(directory, job.run_as.uid, job.run_as.gid)
        return path

    def write_launch(self, job: JobLaunch, document: dict) -> Path:
        """Write the attempt's `launch.json` for suan.exec._rank: readable by its owner only (it
        holds the job's environment), owned by the account the ranks run as."""
        path = self.run_dir(job.job_id, job.attempt) / "launch.json"
        write_private(path, json.dumps({**document, "run_as": _identity(job)}, indent=1))
        if job.run_as is not None:
            os.chown(path, job.run_as.uid, job.run_as.gid)
        return path

    def exit_code(self, job_id: str, attempt: int, rank: int) -> int | None:
        """The exit code the shim wrote for a rank, None while there is none."""
        try:
            return int(self.exit_path(job_id, attempt, rank).read_text())
        except (OSError, ValueError):
            return None

    def read_log(
        self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20
    ) -> tuple[bytes, int]:
        """Up to `limit` bytes of rank `rank`'s log from `offset`, and the offset after them."""
        offset = max(0, offset)
        try:
            with open(self.log_path(job_id, rank), "rb") as handle:
                if offset >= os.fstat(handle.fileno()).st_size:
                    return b"", offset  # not sought: past the end may be past what seek takes
                handle.seek(offset)
                data = handle.read(limit)
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)


def _identity(job: JobLaunch) -> dict | None:
    if job.run_as is None:
        return None
    return {"name": job.run_as.name, "uid": job.run_as.uid, "gid": job.run_as.gid}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it may hold a job's environment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _replace_text(path: Path, text: str) -> None:
    """Write `text` to `path` at once (readers see the old file or the whole new one)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)
