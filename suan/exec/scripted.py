"""The scripted engine: ranks that run for a scripted time on a clock and exit with a scripted
code, and no processes. For tests and replays that must be deterministic.

    engine = ScriptedEngine(nodes, script, clock)     # the 'cluster': its launches and clock
    executor = ScriptedExecutor(engine)               # one server's view of it

`script(launch, rank, env)` says what one rank does (`RankScript`): how many seconds it runs
from its launch, its exit code, and the output it writes (its log holds it from the launch
on). `env` is the environment the rank would get from any engine
(`suan.exec.environment.rank_environments`, without the server's own variables). `clock` is a
callable returning seconds (`time.monotonic` by default; a replay passes its own clock).

The engine keeps every launch, as a cluster outlives the server that launched on it: a new
executor over the same engine `discover`s and `adopt`s them. `stop(job, grace_s)` is SIGTERM
then SIGKILL: a rank that honours SIGTERM ends at once with 143 (128 + 15); one that ignores it
(`RankScript.ignores_sigterm`) ends at its scripted time or, when that is later, `grace_s` on
with 137 (128 + 9), as the local engine reports signals. A placement on a node the engine does
not have is refused with `EngineError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Node
from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import (
    EngineError,
    JobLaunch,
    JobStatus,
    RankHandle,
    RankStatus,
    handles_by_job,
    launch_name,
)
from suan.exec.environment import rank_environments

SIGTERM_EXIT = 128 + 15
SIGKILL_EXIT = 128 + 9
MASTER_PORT = 29500
"""The rendezvous port every scripted launch names (no process listens on it)."""


@dataclass(frozen=True)
class RankScript:
    """What one rank does: runs `seconds` from its launch, then exits with `exit_code`;
    `output` is its log; `ignores_sigterm`: a stop ends it only after the grace period."""

    seconds: float
    exit_code: int = 0
    output: bytes = b""
    ignores_sigterm: bool = False


Script = Callable[[JobLaunch, int, Mapping[str, str]], RankScript]
"""(launch, rank, the rank's environment) -> what that rank does."""


@dataclass
class _Rank:
    handle: RankHandle
    script: RankScript
    ends_at: float
    exit_code: int


@dataclass
class _Launch:
    """One attempt of one job on the engine, and any stop under way."""

    ranks: list[_Rank]
    stopping: bool = False


@dataclass
class ScriptedEngine:
    """The engine's side: its nodes, what ranks do, its clock, and every launch made on it."""

    nodes: tuple[Node, ...]
    script: Script
    clock: Callable[[], float] = time.monotonic
    catalog: Catalog = field(default_factory=default_catalog)
    launches: dict[tuple[str, int], _Launch] = field(default_factory=dict)
    logs: dict[tuple[str, int], bytearray] = field(default_factory=dict)

    def launch(self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]) -> list[RankHandle]:
        """Start every rank of `job` at the clock's now."""
        if not job.command:
            raise ValueError(f"job {job.job_id} has no command")
        known = {node.name for node in self.nodes}
        unknown = sorted({r.node for r in placement} - known)
        if unknown:
            raise EngineError(f"the scripted engine has no node {', '.join(unknown)}")
        master = placement[0].node if placement else "localhost"
        envs = rank_environments(job, placement, master, MASTER_PORT, base={},
                                 catalog=self.catalog)
        now = self.clock()
        ranks = []
        for rank, (replica, env) in enumerate(zip(placement, envs, strict=True)):
            script = self.script(job, rank, env)
            handle = RankHandle(job.job_id, job.attempt, rank, replica.node, replica.devices,
                                0, 0, "", launch_name(job.job_id, job.attempt))
            ranks.append(_Rank(handle, script, now + script.seconds, script.exit_code))
            self.logs.setdefault((job.job_id, rank), bytearray()).extend(script.output)
        self.launches[(job.job_id, job.attempt)] = _Launch(ranks)
        return [r.handle for r in ranks]

    def stop(self, job_id: str, attempt: int, grace_s: float) -> None:
        """SIGTERM now, SIGKILL after `grace_s`, to the ranks of that launch still running."""
        launch = self.launches.get((job_id, attempt))
        if launch is None or launch.stopping:
            return
        launch.stopping = True
        now = self.clock()
        for rank in launch.ranks:
            if rank.ends_at <= now:
                continue
            if not rank.script.ignores_sigterm:
                rank.ends_at, rank.exit_code = now, SIGTERM_EXIT
            elif rank.ends_at > now + grace_s:
                rank.ends_at, rank.exit_code = now + grace_s, SIGKILL_EXIT

    def status(self, job_id: str, attempt: int) -> JobStatus:
        launch = self.launches[(job_id, attempt)]
        now = self.clock()
        ranks = tuple(
            RankStatus(r.handle.rank, True) if now < r.ends_at
            else RankStatus(r.handle.rank, False, r.exit_code)
            for r in launch.ranks
        )
        return JobStatus(job_id, attempt, ranks, stopping=launch.stopping)

    def next_end(self, launches: Iterable[tuple[str, int]]) -> float | None:
        """The earliest time after now at which a rank of those launches ends (None: none
        runs)."""
        now = self.clock()
        ends = [r.ends_at for key in launches for r in self.launches[key].ranks
                if r.ends_at > now]
        return min(ends, default=None)


class ScriptedExecutor:
    """One server's executor over a `ScriptedEngine` (see the module docstring); it tracks the
    launches it made or adopted, as the other executors do."""

    engine = "scripted"

    def __init__(self, engine: ScriptedEngine):
        self.scripted = engine
        self._tracked: dict[str, int] = {}

    def inventory(self) -> tuple[Node, ...]:
        """The engine's nodes, labelled with the engine."""
        return tuple(replace(node, labels={**node.labels, "engine": self.engine})
                     for node in self.scripted.nodes)

    def launch(self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]) -> list[RankHandle]:
        handles = self.scripted.launch(job, placement)
        self._tracked[job.job_id] = job.attempt
        return handles

    def poll(self) -> dict[str, JobStatus]:
        return {job_id: self.scripted.status(job_id, attempt)
                for job_id, attempt in self._tracked.items()}

    def stop(self, job_id: str, grace_s: float) -> None:
        attempt = self._tracked.get(job_id)
        if attempt is not None:
            self.scripted.stop(job_id, attempt, grace_s)

    def logs(
        self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20
    ) -> tuple[bytes, int]:
        """Up to `limit` bytes of the rank's output (every attempt's, in order) from `offset`."""
        data = bytes(self.scripted.logs.get((job_id, rank), b"")[offset : offset + limit])
        return data, offset + len(data)

    def adopt(self, handles: list[RankHandle]) -> None:
        for job_id, ranks in handles_by_job(handles).items():
            if (job_id, ranks[0].attempt) in self.scripted.launches:
                self._tracked.setdefault(job_id, ranks[0].attempt)

    def forget(self, job_id: str) -> None:
        self._tracked.pop(job_id, None)

    def discover(self, job_id: str, attempt: int) -> list[RankHandle]:
        launch = self.scripted.launches.get((job_id, attempt))
        return [] if launch is None else [rank.handle for rank in launch.ranks]

    def tracked(self) -> set[str]:
        return set(self._tracked)

    def next_end(self) -> float | None:
        """The earliest time after the clock's now at which a tracked rank ends (None: none
        runs): when a replay must look again."""
        return self.scripted.next_end(self._tracked.items())
