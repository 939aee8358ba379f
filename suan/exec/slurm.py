"""The Slurm executor: each placed gang is one Slurm job pinned to the nodes Suan chose.

- `inventory()` reads `sinfo --json` (suan.exec.slurm_inventory);
- `launch()` writes `launch.json` and a batch script (suan.exec.slurm_script) into the run
  directory and submits it with `sbatch --parsable` under the name `suan-<job>-<attempt>`;
  a launch whose name Slurm already knows is adopted, never submitted again;
- `poll()` reads `squeue --json --states=all` for the tracked jobs, and each rank's exit file
  and device file (written on the node by suan.exec._rank and the shim, on shared storage);
- `stop()` sends SIGTERM to every step (`scancel --signal=TERM`), and after the grace period
  cancels the job (`scancel`, Slurm's own SIGTERM then SIGKILL);
- `discover()` finds a launch by its name (`squeue --name`), `logs()` reads the shared files.

Slurm picks device ids itself (GRES); the ids a rank got are read back from its device file
and reported in `RankStatus.devices`. Suan needs its own partition (or all of the cluster):
Slurm jobs that Suan did not submit are not seen as holding devices (docs/engines.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
from suan.exec.environment import HIDDEN, base_environment, rank_environments
from suan.exec.files import RANK_STARTER, SHIM, JobFiles, write_private
from suan.exec.slurm_inventory import SlurmInventoryRules, slurm_nodes
from suan.exec.slurm_script import batch_script, node_shapes

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING"}
"""Slurm job states in which a rank without an exit file still counts as running."""


@dataclass(frozen=True)
class SlurmSettings:
    """How Suan drives one Slurm cluster.

    `conf` is the slurm.conf path for the client commands (SLURM_CONF; None: Slurm's own
    default); `partition` the partition Suan owns; `default_type` the catalog type of an
    untyped `gpu:N` GRES; `topology_prefixes` the feature prefix per topology tier;
    `simulated` says the GRES are stand-ins (no real devices: ranks use gloo); `python` the
    interpreter on the nodes (default: the server's own, which works on shared installs).
    `status_interval_s` is how often `poll()` reads squeue while nothing changed (no stop under
    way, no new launch, no new exit file): exit files already say when ranks end.
    """

    conf: str | None = None
    partition: str | None = None
    default_type: str | None = None
    gres_name: str = "gpu"
    topology_prefixes: Mapping[str, str] | None = None
    simulated: bool = False
    python: str = sys.executable
    command_timeout_s: float = 30.0
    master_port_base: int = 29500
    status_interval_s: float = 1.0

    def inventory_rules(self) -> SlurmInventoryRules:
        rules = SlurmInventoryRules(self.gres_name, self.default_type, partition=self.partition)
        if self.topology_prefixes is None:
            return rules
        return replace(rules, topology_prefixes=dict(self.topology_prefixes))


@dataclass
class _Tracked:
    attempt: int
    handles: list[RankHandle]
    slurm_id: str
    stop_deadline: float | None = None
    cancelled: bool = False
    exits_seen: int = -1


class SlurmExecutor:
    """Runs gangs as Slurm jobs; see the module docstring."""

    engine = "slurm"

    def __init__(self, home: Path, settings: SlurmSettings, catalog: Catalog | None = None):
        self.home = Path(home)
        self.files = JobFiles(self.home)
        self.settings = settings
        self.catalog = catalog or default_catalog()
        self._jobs: dict[str, _Tracked] = {}
        self._nodes: dict[str, Node] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._records_at = -float("inf")

    # -- talking to Slurm --------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in base_environment().items() if key not in HIDDEN}
        if self.settings.conf:
            env["SLURM_CONF"] = self.settings.conf
        return env

    def _run(self, argv: Sequence[str]) -> str:
        """Run a Slurm command; its stdout, or EngineError quoting Slurm's message."""
        if self.settings.conf and not Path(self.settings.conf).is_file():
            raise EngineError(f"slurm: the config file {self.settings.conf} does not exist")
        try:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                env=self._env(),
                timeout=self.settings.command_timeout_s,
            )
        except FileNotFoundError:
            raise EngineError(f"slurm: {argv[0]} is not installed on this machine") from None
        except subprocess.TimeoutExpired:
            raise EngineError(
                f"slurm: {argv[0]} did not answer within {self.settings.command_timeout_s:g}s"
            ) from None
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise EngineError(f"slurm: {argv[0]} failed: {' '.join(message)[-500:]}")
        return done.stdout

    def _json(self, argv: Sequence[str]) -> dict[str, Any]:
        text = self._run(argv)
        try:
            return json.loads(text)
        except ValueError:
            raise EngineError(f"slurm: {argv[0]} printed no JSON: {text[:200]!r}") from None

    # -- inventory ---------------------------------------------------------------------------
    def inventory(self) -> tuple[Node, ...]:
        """The partition's nodes (see suan.exec.slurm_inventory)."""
        nodes = slurm_nodes(
            self._json(["sinfo", "--json"]), self.settings.inventory_rules(), self.catalog
        )
        self._nodes = {node.name: node for node in nodes}
        return nodes

    def _node(self, name: str) -> Node:
        if name not in self._nodes:
            self.inventory()
        if name not in self._nodes:
            raise EngineError(f"slurm does not know node {name!r} (sinfo lists none by that name)")
        return self._nodes[name]

    # -- launch ------------------------------------------------------------------------------
    def launch(self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]) -> list[RankHandle]:
        """Submit one Slurm job for the gang; adopt it instead when its name is already known."""
        if not job.command:
            raise ValueError(f"job {job.job_id} has no command")
        name = launch_name(job.job_id, job.attempt)
        found = self._find(name)
        if found is not None:
            handles = self._handles(job.job_id, job.attempt, found, placement)
        else:
            handles = self._submit(job, placement, name)
        self._jobs[job.job_id] = _Tracked(job.attempt, handles, handles[0].engine_id)
        return handles

    def _submit(
        self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...], name: str
    ) -> list[RankHandle]:
        nodes = [self._node(replica.node) for replica in placement]
        run_dir = self.files.prepare(job)
        launch_file = self.files.write_launch(job, self._launch_document(job, placement, nodes))
        shapes = node_shapes(placement, {n.name: n.labels.get("slurm.gres") for n in nodes})
        script = batch_script(
            name,
            shapes,
            [self.settings.python, "-I", "-S", str(RANK_STARTER), str(launch_file)],
            output=str(run_dir / "slurm-%j.out"),
            partition=self.settings.partition,
            extra=[f"--chdir={self._workdir(job)}", *_identity_options(job)],
        )
        script_file = run_dir / "batch.sh"
        write_private(script_file, script)
        slurm_id = self._run(["sbatch", "--parsable", str(script_file)]).strip().split(";")[0]
        return self._handles(job.job_id, job.attempt, slurm_id, placement)

    def _workdir(self, job: JobLaunch) -> str:
        if job.workdir and Path(job.workdir).is_dir():
            return job.workdir
        return str(self.files.job_dir(job.job_id))

    def _launch_document(
        self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...], nodes: list[Node]
    ) -> dict[str, Any]:
        name = launch_name(job.job_id, job.attempt)
        master = nodes[0].labels.get("address") or nodes[0].name
        port = self.settings.master_port_base + zlib.crc32(name.encode()) % 10000
        envs = rank_environments(job, placement, master, port, base={}, catalog=self.catalog)
        visible = self.catalog.get(job.accelerator).visible_devices_env if job.accelerator else ""
        ranks = []
        for rank, (replica, env) in enumerate(zip(placement, envs, strict=True)):
            env.pop(visible, None)  # _rank.py sets it from the devices Slurm gave
            ranks.append(self.files.rank_entry(job, rank, replica.node, len(replica.devices), env))
        return {
            "attempt": job.attempt,
            "python": self.settings.python,
            "shim": str(SHIM),
            "command": list(job.command),
            "node_var": "SLURMD_NODENAME",
            "local_var": "SLURM_LOCALID",
            "devices_var": "SLURM_STEP_GPUS",
            "visible_var": visible,
            "workdir": self._workdir(job),
            "ranks": ranks,
        }

    def _handles(
        self, job_id: str, attempt: int, slurm_id: str, placement: Sequence[ReplicaPlacement]
    ) -> list[RankHandle]:
        return self.files.remote_handles(job_id, attempt, placement, lambda _rank: slurm_id)

    # -- finding launches --------------------------------------------------------------------
    def _queue(self) -> list[dict[str, Any]]:
        """Every job slurmctld still knows, finished ones included.

        Slurm 22.05 ignores squeue's filters with --json, so callers filter the records.
        """
        return list(self._json(["squeue", "--json", "--states=all"]).get("jobs") or [])

    def _find(self, name: str) -> str | None:
        """The Slurm job id of a launch named `name` that Slurm took and still knows, else None.

        A submission Slurm refused can leave a record that ended without nodes (e.g. FAILED,
        BadConstraints); that is not a launch."""
        ids = [
            _slurm_id(record)
            for record in self._queue()
            if record.get("name") == name
            and (record.get("nodes") or str(record.get("job_state")) in ACTIVE)
        ]
        return ids[-1] if ids else None

    def discover(self, job_id: str, attempt: int) -> list[RankHandle]:
        """The ranks of a launch that Slurm knows by its name (after a server crash)."""
        slurm_id = self._find(launch_name(job_id, attempt))
        if slurm_id is None:
            return []
        try:
            document = json.loads((self.files.run_dir(job_id, attempt) / "launch.json").read_text())
        except (OSError, ValueError):
            return []
        placement = [
            ReplicaPlacement(0, rank["node"], tuple(range(rank["devices"])))
            for rank in document["ranks"]
        ]
        return self._handles(job_id, attempt, slurm_id, placement)

    def adopt(self, handles: list[RankHandle]) -> None:
        for job_id, ranks in handles_by_job(handles).items():
            if job_id not in self._jobs and ranks[0].engine_id:
                self._jobs[job_id] = _Tracked(ranks[0].attempt, ranks, ranks[0].engine_id)

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def tracked(self) -> set[str]:
        return set(self._jobs)

    # -- watching ----------------------------------------------------------------------------
    def _states(self, now: float) -> dict[str, dict[str, Any]]:
        """Slurm's record of every tracked job by id (the first component of a het job), read
        again when the last reading is stale (see `SlurmSettings.status_interval_s`)."""
        changed = False
        for job_id, tracked in self._jobs.items():
            exits = self.files.exit_count(job_id, tracked.attempt)
            changed |= exits != tracked.exits_seen or tracked.stop_deadline is not None
            tracked.exits_seen = exits
        wanted = {t.slurm_id for t in self._jobs.values()}
        fresh = now - self._records_at < self.settings.status_interval_s
        if fresh and not changed and wanted <= self._records.keys():
            return self._records
        self._records = {
            _slurm_id(record): record
            for record in self._queue()
            if _slurm_id(record) in wanted and not record.get("het_job_offset")
        }
        self._records_at = now
        return self._records

    def poll(self) -> dict[str, JobStatus]:
        """Every tracked job's ranks; escalates stops whose grace period is over."""
        if not self._jobs:
            return {}
        now = time.monotonic()
        records = self._states(now)
        report = {}
        for job_id, tracked in self._jobs.items():
            record = records.get(tracked.slurm_id)
            state = str(record.get("job_state", "")) if record else "GONE"
            ranks = tuple(self._rank_status(job_id, tracked, h, state) for h in tracked.handles)
            if tracked.stop_deadline is not None and not tracked.cancelled:
                self._escalate(tracked, state, now)
            report[job_id] = JobStatus(
                job_id,
                tracked.attempt,
                ranks,
                stopping=tracked.stop_deadline is not None,
                message=_describe(tracked.slurm_id, record),
            )
        return report

    def _rank_status(
        self, job_id: str, tracked: _Tracked, handle: RankHandle, state: str
    ) -> RankStatus:
        code = self.files.exit_code(job_id, handle.attempt, handle.rank)
        devices = self.files.assigned_devices(job_id, handle.attempt, handle.rank)
        if code is not None:
            return RankStatus(handle.rank, False, code, devices)
        return RankStatus(handle.rank, state in ACTIVE, None, devices)

    def stop(self, job_id: str, grace_s: float) -> None:
        """SIGTERM (then SIGCONT, so that a stopped rank acts on it) every rank now; the job
        is cancelled after `grace_s` (by `poll()`)."""
        tracked = self._jobs.get(job_id)
        if tracked is None or tracked.stop_deadline is not None:
            return
        tracked.stop_deadline = time.monotonic() + grace_s
        try:
            self._run(["scancel", "--signal=TERM", tracked.slurm_id])
            self._run(["scancel", "--signal=CONT", tracked.slurm_id])
        except EngineError:
            self._cancel(tracked)

    def _escalate(self, tracked: _Tracked, state: str, now: float) -> None:
        """Cancel a stopping job once its grace is over; at once when no rank started yet."""
        if state not in ACTIVE:
            tracked.cancelled = True  # it ended by itself
        elif now >= (tracked.stop_deadline or now) or state == "PENDING":
            self._cancel(tracked)

    def _cancel(self, tracked: _Tracked) -> None:
        tracked.cancelled = True
        self._run(["scancel", tracked.slurm_id])

    def logs(
        self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20
    ) -> tuple[bytes, int]:
        return self.files.read_log(job_id, rank, offset, limit)


def _slurm_id(record: Mapping[str, Any]) -> str:
    """A job's id, or the id of the heterogeneous job it is a component of."""
    return str(record.get("het_job_id") or record["job_id"])


def _describe(slurm_id: str, record: Mapping[str, Any] | None) -> str:
    """ "slurm job 12: PENDING (ReqNodeNotAvail, UnavailableNodes:n2)"-style words."""
    if record is None:
        return f"slurm job {slurm_id}: no longer known to slurmctld"
    state = record.get("job_state", "?")
    reason = record.get("state_reason") or ""
    suffix = f" ({reason})" if reason and reason != "None" else ""
    return f"slurm job {slurm_id}: {state}{suffix}"


def _identity_options(job: JobLaunch) -> list[str]:
    """sbatch's options to run the job as its account (root may submit for any user)."""
    if job.run_as is None:
        return []
    return [f"--uid={job.run_as.uid}", f"--gid={job.run_as.gid}"]
