"""The local executor: every rank is a process of this machine, in its own process group.

Its files under `home` follow `suan.exec.files`; the pid file is written right after spawn.
A rank is the shim process (the group leader) and the command under it. The server records each
shim's pid and start time (from /proc); a later server re-adopts the ranks with `adopt()` and
tells a live rank from a reused pid by the start time. Ranks outlive the server.

Isolation (`suan.exec.isolation`): where the machine allows it, each rank runs in its own
control group (its memory and pids limits; the tag that finds every process it started) and in
a sandbox with its own pid namespace (it sees only its own processes). Every rank also carries
its launch's tag in its environment (`SUAN_LAUNCH`), so that a launch a crash cut before its pid
files were written is still found (`discover`) and stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Node
from suan.cluster.snapshot import ReplicaPlacement
from suan.devices.watch import DeviceWatch
from suan.exec import (
    EngineError,
    JobLaunch,
    JobStatus,
    RankHandle,
    RankStatus,
    handles_by_job,
)
from suan.exec.environment import rank_environments
from suan.exec.files import SHIM, JobFiles
from suan.exec.isolation import Isolation
from suan.exec.local_node import local_node


def process_start_ticks(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks after boot), None when it is gone.

    A zombie (exited, not yet reaped) counts as gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for MASTER_ADDR:MASTER_PORT)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class _Tracked:
    """The ranks of the current attempt of one job, and any stop under way."""

    attempt: int
    handles: list[RankHandle]
    children: dict[int, subprocess.Popen] = field(default_factory=dict)
    stop_deadline: float | None = None
    killed: bool = False
    cleaned: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    adopted: bool = False


class LocalExecutor:
    """Runs ranks as local processes; see the module docstring for the files it keeps.

    `node` is this machine as the scheduler sees it (its whole inventory); None builds it from
    the detected GPUs or 8 simulated H100 slots. `isolation` is what keeps ranks apart (None:
    every layer this machine allows, `Isolation.detect`). `health` reads the devices' health
    (suan.devices.watch); its last verdict is applied to the node the inventory reports.
    """

    engine = "local"

    def __init__(
        self,
        home: Path,
        master_addr: str = "127.0.0.1",
        catalog: Catalog | None = None,
        node: Node | None = None,
        isolation: Isolation | None = None,
        health: DeviceWatch | None = None,
    ):
        self.home = Path(home)
        self.files = JobFiles(self.home)
        self.master_addr = master_addr
        self.catalog = catalog or default_catalog()
        if node is None:
            node, _ = local_node(None, self.catalog)
        self.node = replace(node, labels={**node.labels, "engine": self.engine})
        self._jobs: dict[str, _Tracked] = {}
        self.isolation = isolation or Isolation.detect(self.home)
        self._on_exit: Callable[[], None] | None = None
        self.health = health

    # -- paths -------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.files.job_dir(job_id)

    def log_path(self, job_id: str, rank: int) -> Path:
        return self.files.log_path(job_id, rank)

    def exit_path(self, job_id: str, attempt: int, rank: int) -> Path:
        return self.files.exit_path(job_id, attempt, rank)

    # -- the port ----------------------------------------------------------------------------
    def inventory(self) -> tuple[Node, ...]:
        """This machine, labelled with the engine, with its last device-health verdict."""
        return (self.health.apply(self.node) if self.health else self.node,)

    def launch(self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]) -> list[RankHandle]:
        """Start every rank of `job` now, each in its own process group; return their handles."""
        if not job.command:
            raise ValueError(f"job {job.job_id} has no command")
        unknown = sorted({r.node for r in placement} - {self.node.name})
        if unknown:
            raise EngineError(f"the local engine has one node, {self.node.name!r}, not {unknown}")
        envs = rank_environments(
            job, placement, self.master_addr, free_port(self.master_addr), catalog=self.catalog
        )
        workdir = job.workdir if job.workdir and Path(job.workdir).is_dir() else None
        self.files.prepare(job)
        tracked = _Tracked(job.attempt, [])
        for rank, (replica, env) in enumerate(zip(placement, envs, strict=True)):
            env.update(self.isolation.environment(job, rank))
            child = self._spawn(job, rank, env, workdir or str(self.job_dir(job.job_id)))
            ticks = process_start_ticks(child.pid) or 0
            handle = RankHandle(
                job.job_id,
                job.attempt,
                rank,
                replica.node,
                replica.devices,
                child.pid,
                ticks,
                str(self.log_path(job.job_id, rank)),
            )
            self._write_pid_file(handle)
            tracked.handles.append(handle)
            tracked.children[rank] = child
            if self._on_exit is not None:
                threading.Thread(target=self._watch, args=(child,), daemon=True).start()
        self._jobs[job.job_id] = tracked
        return list(tracked.handles)

    def on_exit(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from a watcher thread) as soon as a rank launched from now on
        exits, so that the owner polls at once rather than at its next period."""
        self._on_exit = callback

    def _watch(self, child: subprocess.Popen) -> None:
        child.wait()
        if self._on_exit is not None:
            self._on_exit()

    def _spawn(self, job: JobLaunch, rank: int, env: dict[str, str], cwd: str) -> subprocess.Popen:
        exit_file = self.exit_path(job.job_id, job.attempt, rank)
        exit_file.unlink(missing_ok=True)
        log = self.log_path(job.job_id, rank)
        with open(log, "ab") as out:
            if job.run_as is not None:
                os.fchown(out.fileno(), job.run_as.uid, job.run_as.gid)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"--- suan: attempt {job.attempt}, rank {rank}, {stamp} ---\n".encode())
            out.flush()
            options = self.isolation.shim_options(job, rank, job.log_bytes)
            shim = [sys.executable, "-I", "-S", str(SHIM), *options, str(exit_file), "--"]
            return subprocess.Popen(
                [*shim, *job.command],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )

    def _write_pid_file(self, handle: RankHandle) -> None:
        path = self.files.pid_path(handle.job_id, handle.attempt, handle.rank)
        devices = ",".join(str(device) for device in handle.devices)
        path.write_text(f"{handle.pid} {handle.start_ticks} {handle.node} {devices}\n")

    def discover(self, job_id: str, attempt: int) -> list[RankHandle]:
        """Ranks of `job_id`'s attempt, for a launch a crash cut: those with pid files, and
        those started just before the crash, found by their group or tag (`members`)."""
        handles = {handle.rank: handle for handle in self._pid_files(job_id, attempt)}
        for rank, pids in self.isolation.members(job_id, attempt).items():
            if rank not in handles:
                handles[rank] = self._found_rank(job_id, attempt, rank, pids)
        return [handles[rank] for rank in sorted(handles)]

    def _found_rank(self, job_id: str, attempt: int, rank: int, pids: list[int]) -> RankHandle:
        """A handle for a rank found without its pid file: its process-group leader (the
        shim), else its oldest process; devices unknown."""
        leader = next((pid for pid in pids if _process_group(pid) == pid), pids[0])
        return RankHandle(
            job_id,
            attempt,
            rank,
            self.node.name,
            (),
            leader,
            process_start_ticks(leader) or 0,
            str(self.log_path(job_id, rank)),
        )

    def _pid_files(self, job_id: str, attempt: int) -> list[RankHandle]:
        handles = []
        for path in sorted(self.files.run_dir(job_id, attempt).glob("rank-*.pid")):
            try:
                pid, ticks, node, *rest = path.read_text().split()
                rank = int(path.stem.removeprefix("rank-"))
                devices = tuple(int(d) for d in rest[0].split(",")) if rest else ()
                handles.append(
                    RankHandle(
                        job_id,
                        attempt,
                        rank,
                        node,
                        devices,
                        int(pid),
                        int(ticks),
                        str(self.log_path(job_id, rank)),
                    )
                )
            except (OSError, ValueError):
                continue
        return sorted(handles, key=lambda handle: handle.rank)

    def poll(self) -> dict[str, JobStatus]:
        """The status of every tracked job; escalates stops whose grace period is over."""
        now = time.monotonic()
        report = {}
        for job_id, tracked in self._jobs.items():
            ranks = tuple(self._rank_status(job_id, tracked, h) for h in tracked.handles)
            if (
                tracked.stop_deadline is not None
                and not tracked.killed
                and now >= tracked.stop_deadline
            ):
                self._signal_all(tracked, signal.SIGKILL)
                self.isolation.sweep(job_id, tracked.attempt, thorough=tracked.adopted)
                tracked.killed = True
            report[job_id] = JobStatus(
                job_id,
                tracked.attempt,
                ranks,
                stopping=tracked.stop_deadline is not None,
                message="; ".join(tracked.notes),
            )
        return report

    def _rank_status(self, job_id: str, tracked: _Tracked, handle: RankHandle) -> RankStatus:
        child = tracked.children.get(handle.rank)
        if child is not None:
            returncode = child.poll()
            running = returncode is None
        else:
            returncode = None
            running = process_start_ticks(handle.pid) == handle.start_ticks
        if running:
            return RankStatus(handle.rank, True)
        if handle.rank not in tracked.cleaned:
            tracked.cleaned.add(handle.rank)
            _killpg(handle.pid, signal.SIGKILL)  # whatever the rank left in its group
            self.isolation.sweep(job_id, tracked.attempt, handle.rank, tracked.adopted)
            if self.isolation.oom_kills(job_id, tracked.attempt, handle.rank):
                tracked.notes.append(
                    f"rank {handle.rank} was killed for using more memory "
                    "than its limit (spec memory)"
                )
        return RankStatus(handle.rank, False, self._exit_code(job_id, handle, returncode))

    def _exit_code(self, job_id: str, handle: RankHandle, returncode: int | None) -> int | None:
        code = self.files.exit_code(job_id, handle.attempt, handle.rank)
        if code is not None or returncode is None:
            return code
        return 128 - returncode if returncode < 0 else returncode

    def stop(self, job_id: str, grace_s: float) -> None:
        """SIGTERM (then SIGCONT) every rank's process group now; `poll()` sends SIGKILL after
        `grace_s`."""
        tracked = self._jobs.get(job_id)
        if tracked is None or tracked.stop_deadline is not None:
            return
        tracked.stop_deadline = time.monotonic() + grace_s
        self._signal_all(tracked, signal.SIGTERM)
        self._signal_all(tracked, signal.SIGCONT)  # a stopped (hung) rank acts on the SIGTERM

    def _signal_all(self, tracked: _Tracked, number: int) -> None:
        for handle in tracked.handles:
            child = tracked.children.get(handle.rank)
            alive = (
                child.poll() is None
                if child is not None
                else process_start_ticks(handle.pid) == handle.start_ticks
            )
            if alive:
                _killpg(handle.pid, number)

    def logs(
        self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20
    ) -> tuple[bytes, int]:
        """Up to `limit` bytes of rank `rank`'s log from `offset`, and the offset after them."""
        return self.files.read_log(job_id, rank, offset, limit)

    def adopt(self, handles: list[RankHandle]) -> None:
        """Track ranks that an earlier server launched (not children of this process)."""
        for job_id, ranks in handles_by_job(handles).items():
            if job_id not in self._jobs:
                self._jobs[job_id] = _Tracked(ranks[0].attempt, ranks, adopted=True)

    def forget(self, job_id: str) -> None:
        """Stop tracking a job. Once its ranks are gone, kill what they left and remove their
        groups; ranks still running are left alone (a standby server hands them on)."""
        tracked = self._jobs.pop(job_id, None)
        if tracked is not None and len(tracked.cleaned) >= len(tracked.handles):
            self.isolation.sweep(job_id, tracked.attempt, thorough=tracked.adopted)
            self.isolation.release(job_id, tracked.attempt)

    def tracked(self) -> set[str]:
        return set(self._jobs)


def _process_group(pid: int) -> int | None:
    """The process group of `pid`, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[2])


def _killpg(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)
