"""The settings of one control-plane server, fixed at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from suan.cluster.snapshot import ReplicaPlacement, part_share
from suan.control.identity import IdentityPolicy
from suan.jobs.model import Job


@dataclass(frozen=True)
class RankLimits:
    """The limits a rank gets where its spec names none: `pids` (processes and threads at
    once), `memory_mib` (0: none), and `log_bytes`, what one attempt of a rank may write to its
    log (the rest is dropped, with a line saying so)."""

    pids: int = 4096
    memory_mib: int = 0
    log_bytes: int = 1 << 30

    def per_rank(self, job: Job, ranks: tuple[ReplicaPlacement, ...], mode: str) -> tuple[
        tuple[int, ...], tuple[int, ...]
    ]:
        """(memory MiB, pids) for each rank: its replica group's values shared among the
        replica's processes (`per-device` starts one a device; a replica that spans nodes is
        one process per node part, each with its devices' share), else these defaults."""
        memory, pids = [], []
        for rank in ranks:
            group = job.groups[rank.group]
            if mode == "per-device":
                held, whole = 1, max(1, group.accelerators)
            else:
                held, whole = len(rank.devices), group.accelerators
            memory.append(part_share(group.memory_mib, held, whole) if group.memory_mib
                          else self.memory_mib)
            pids.append(part_share(group.pids, held, whole) if group.pids else self.pids)
        return tuple(memory), tuple(pids)


@dataclass(frozen=True)
class ControlConfig:
    """Where state lives, whether devices are simulated, and the reconciler's timings (s).

    The nodes come from the executor's inventory, asked at most every `inventory_s`.
    `restart_backoff_s` is the wait before the first gang restart (doubling after each);
    `stop_grace_s` the time between SIGTERM and SIGKILL when a job is stopped;
    `launch_refusals` how many times in a row an engine may refuse a job's launch before the
    job fails with the engine's message; `identity` which OS account each job's ranks run as;
    `no_progress_timeout_s` the time after which a running gang with a rank that reported
    progress and then reported none is restarted as hung, for jobs whose spec sets none (None:
    no hang detection for them, see suan.control.hangs); `checkpoint_roots` the operator's
    directories under which each user may name checkpoint directories (`<root>/<user>/...`,
    beside `<home>/users/<user>/`); `limits` the ranks'
    limits where specs name none.
    """

    home: Path
    simulated: bool = True
    policy: str = "default"
    checkpoint_write_gbs: float = 1.0  # storage write bandwidth per node, GB/s: estimates a
    # checkpoint's cost from its model's size where nothing better is known (checkpoint_advice)
    tick_s: float = 0.25
    restart_backoff_s: float = 2.0
    stop_grace_s: float = 10.0
    inventory_s: float = 5.0
    launch_refusals: int = 3
    no_progress_timeout_s: float | None = None
    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    checkpoint_roots: tuple[str, ...] = ()
    limits: RankLimits = field(default_factory=RankLimits)
