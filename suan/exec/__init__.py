"""Executors: the port through which the control plane runs a job's ranks.

Every backend (engine) is one module with the same operations (the `Executor` protocol):

- `inventory()` reports the engine's nodes as scheduler `Node`s: accelerator type and count
  mapped through the catalog, topology tiers from the engine's labels or features, and health
  with the engine's own reason (`Node.health_reason`); raises `EngineError` when the engine
  cannot be reached;
- `launch(job, placement)` starts every rank of one attempt on exactly the placement's nodes and
  returns their handles (`RankHandle.engine_id` is the engine's id for the launch: a Slurm job
  id, a Ray placement group, a Pod); raises `EngineError` quoting the engine when it refuses;
- `poll()` reports, for every job it tracks, which ranks run and how the others ended;
- `stop(job_id, grace_s)` sends SIGTERM to every rank, SIGKILL after the grace period;
- `logs(job_id, rank, offset)` returns a rank's output from `offset` on;
- `adopt(handles)` tracks ranks launched by an earlier server process;
- `forget(job_id)` stops tracking a job whose ranks are all gone;
- `discover(job_id, attempt)` finds the ranks of a launch that a server crash interrupted.

Every launch carries a fixed engine-side name, `launch_name(job, attempt)`, so that `discover`
finds a launch whose submission a server crash cut short and it is never submitted twice.
Where the engine picks device ids itself (Slurm GRES), `poll()` reports the ids it assigned
(`RankStatus.devices`) and they become the placement of record.

`suan.exec.local` runs ranks as processes of this machine, `suan.exec.slurm` as Slurm jobs.
This module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from suan.cluster.model import Node
from suan.cluster.snapshot import ReplicaPlacement
from suan.errors import SuanError


class EngineError(SuanError):
    """The engine could not be reached or refused a request; the message quotes the engine."""


def launch_name(job_id: str, attempt: int) -> str:
    """The engine-side name of one launch: `suan-<job>-<attempt>`."""
    return f"suan-{job_id}-{attempt}"


@dataclass(frozen=True)
class OsIdentity:
    """The operating-system account a job's ranks run as: its name, uid and primary gid."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class JobLaunch:
    """What an executor needs to start one attempt of a job (placement aside).

    `accelerator` is the catalog name of the node's devices (None: a CPU-only node);
    `simulated` says the devices are slots backed by CPU processes; `image` is the container
    image of engines that run containers (Kubernetes requires it; others ignore it). `run_as`
    is the OS account the ranks run as (None: the server's own); every engine honours it and
    hands the job's directories to that account (`JobFiles.prepare`). `memory_mib` and `pids`
    are each rank's limits (by rank; 0: none) and `log_bytes` caps what one attempt of a rank
    writes to its log; engines that can enforce them do (the local engine's control groups).
    """

    job_id: str
    attempt: int
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    checkpoint_dir: str = ""
    workdir: str = ""
    restart_count: int = 0
    accelerator: str | None = None
    simulated: bool = True
    run_as: OsIdentity | None = None
    image: str = ""
    memory_mib: tuple[int, ...] = ()
    pids: tuple[int, ...] = ()
    log_bytes: int = 0

    def rank_memory_mib(self, rank: int) -> int:
        """The memory limit of rank `rank` in MiB (0: none)."""
        return self.memory_mib[rank] if rank < len(self.memory_mib) else 0

    def rank_pids(self, rank: int) -> int:
        """The process-count limit of rank `rank` (0: none)."""
        return self.pids[rank] if rank < len(self.pids) else 0

    @property
    def uid(self) -> int | None:
        return self.run_as.uid if self.run_as else None

    @property
    def gid(self) -> int | None:
        return self.run_as.gid if self.run_as else None


@dataclass(frozen=True)
class RankHandle:
    """A launched rank: enough to find the process again (pid and its start time)."""

    job_id: str
    attempt: int
    rank: int
    node: str
    devices: tuple[int, ...]
    pid: int
    start_ticks: int
    log_path: str
    engine_id: str = ""


@dataclass(frozen=True)
class RankStatus:
    """One rank as `poll()` saw it. `exit_code` is None while it runs or when it is unknown.

    `devices` are the ids the engine actually gave the rank on its node, when the engine picks
    them itself and they are known (None otherwise).
    """

    rank: int
    running: bool
    exit_code: int | None = None
    devices: tuple[int, ...] | None = None

    @property
    def succeeded(self) -> bool:
        return not self.running and self.exit_code == 0


TERMINATED_CODES = (143, -15)
"""Exit codes of a rank that SIGTERM ended: 128 + 15 from a shell or the shim, -15 from
Python's subprocess."""


@dataclass(frozen=True)
class JobStatus:
    """Every rank of the current attempt of one job; `stopping` while a stop is under way.

    `message` is the engine's own word on the launch when it has one (a Slurm job's state and
    reason such as "PENDING (ReqNodeNotAvail)", "NODE_FAIL").
    """

    job_id: str
    attempt: int
    ranks: tuple[RankStatus, ...]
    stopping: bool = False
    message: str = ""

    @property
    def all_exited(self) -> bool:
        return all(not rank.running for rank in self.ranks)

    @property
    def first_failure(self) -> RankStatus | None:
        """The first rank that ended with a non-zero or unknown exit code, preferring one that
        SIGTERM did not end (an engine may stop the others of a gang when one fails, as
        Slurm's `--kill-on-bad-exit` does, and they may be seen ended first)."""
        failed = [r for r in self.ranks if not r.running and r.exit_code != 0]
        own = (r for r in failed if r.exit_code not in TERMINATED_CODES)
        return next(own, failed[0] if failed else None)


def handles_by_job(handles: list[RankHandle]) -> dict[str, list[RankHandle]]:
    """Handles grouped by job, each group in rank order (what `adopt` receives)."""
    grouped: dict[str, list[RankHandle]] = {}
    for handle in handles:
        grouped.setdefault(handle.job_id, []).append(handle)
    for ranks in grouped.values():
        ranks.sort(key=lambda h: h.rank)
    return grouped


class Executor(Protocol):
    """The executor port; see the module docstring for the contract of each operation."""

    engine: str

    def inventory(self) -> tuple[Node, ...]: ...

    def launch(
        self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]
    ) -> list[RankHandle]: ...

    def poll(self) -> dict[str, JobStatus]: ...

    def stop(self, job_id: str, grace_s: float) -> None: ...

    def logs(
        self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20
    ) -> tuple[bytes, int]: ...

    def adopt(self, handles: list[RankHandle]) -> None: ...

    def forget(self, job_id: str) -> None: ...

    def discover(self, job_id: str, attempt: int) -> list[RankHandle]: ...
