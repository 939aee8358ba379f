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

from pathlib import Path


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
        try:
            with open(self.log_path(job_id, rank), "rb") as handle:
                handle.seek(max(0, offset))
                data = handle.read(limit)
        except FileNotFoundError:
            return b"", offset
        return data, max(0, offset) + len(data)
