"""The Ray executor: each launch is one detached placement group, each rank one detached actor.

The server never imports Ray. It talks to the Ray adapter (`suan.exec.ray_adapter`), a
process beside the Ray cluster, over a Unix socket (`RaySettings.socket`); when nobody answers
there and `RaySettings.address` is set, the executor starts the adapter itself with
`RaySettings.adapter_prefix` in front (e.g. `ip netns exec suanray` where Ray lives in a
network namespace) and waits for it; that adapter outlives the server, and a later server
uses it. Where the adapter answers but Ray refuses, the error quotes Ray.

- `inventory()`: `ray.nodes()` mapped by `suan.exec.ray_inventory` (catalog, label tiers,
  dead nodes `down` with Ray's reason).
- `launch(job, placement)`: writes `launch.json` for `suan/exec/_rank.py`, then asks for one
  detached placement group named `launch_name(job, attempt)` in namespace "suan" with one
  bundle per rank, pinned by `bundle_label_selector` to the rank's node, and one detached
  actor per rank (`<name>-r<rank>`, max_restarts=0) that runs `_rank.py` as a subprocess with
  the node-name and local-index variables set. The bundle asks for the node's accelerator
  resource (`accel:<type>`) and, where the node offers them, as many Ray `GPU`s: Ray then
  picks the device ids, sets CUDA_VISIBLE_DEVICES and the ids become the rank's devices (in
  the handles and in `RankStatus.devices`). `RankHandle.engine_id` is the group's name.
- `poll()`: a rank is running while its actor's subprocess runs; it has ended with the code in
  its exit file (written by the shim), else with its subprocess's code; a dead actor (a killed
  actor, a dead node) without an exit file ended with `None`. Once every rank has ended the
  actors are killed and the group removed; the process group of a rank whose actor died is
  SIGKILLed first by a task in its bundle (the actor's death kills only the shim).
- `stop(job, grace)`: SIGTERM to every rank's process group now, SIGKILL from `poll()` after
  the grace period.
- `discover(job, attempt)`: the group by name and the rank actors in it, after a crash; a
  group a crash left without actors is removed and nothing is found.
- `logs`: from the shared files (`suan.exec.files`).

Files reach the nodes through storage every node mounts at the same path (the server's home,
as with Slurm). The job's code does too, or, with `ship_code` (`shipCode: true`), as Ray's
`runtime_env={"working_dir": ...}` on the rank actors: ranks then start in Ray's copy of the
job's directory. Logs over Ray (without a shared home) are not implemented. Ranks never see
RAY_* variables or the GCS address (see `suan.exec.ray_actor`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PydanticField

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Node
from suan.cluster.snapshot import ReplicaPlacement
from suan.errors import FieldProblem, SpecError
from suan.exec import (
    EngineError,
    JobLaunch,
    JobStatus,
    RankHandle,
    RankStatus,
    handles_by_job,
    launch_name,
)
from suan.exec.environment import base_environment, rank_environments, visible_devices_variable
from suan.exec.files import RANK_STARTER, SHIM, JobFiles
from suan.exec.local import free_port
from suan.exec.ray_inventory import RayInventoryRules, ray_nodes
from suan.problems import describe_errors

NODE_VAR = "SUAN_RAY_NODE"
LOCAL_VAR = "SUAN_RAY_LOCAL_INDEX"


@dataclass(frozen=True)
class RaySettings:
    """Where the adapter listens and how to start it, and how to read and use Ray's nodes.

    `socket`: the adapter's Unix socket (None: `<home>/ray-adapter.sock`). `address`: the GCS
    address for an adapter this executor starts (None: never start one). `adapter_prefix`: the
    command in front of it (`("ip", "netns", "exec", "suanray")`). `python`: the interpreter of
    the adapter and of the ranks' wrapper, at the same path on every node. `cpus_per_rank`:
    Ray CPUs each rank's bundle holds. `ready_timeout_s`: how long a placement group may stay
    pending before `launch` gives up; `start_timeout_s`: the same for the rank actors.
    `ship_code`: send the job's working directory to the nodes as Ray's
    `runtime_env.working_dir` (ranks start in Ray's copy of it) instead of relying on the
    directory being mounted on every node. `status_interval_s`: how often `poll()` asks the
    adapter about a launch that is not stopping and whose ranks wrote no new exit file (each
    ask costs Ray calls on the nodes; exit files already say when ranks end).
    `auth_token_file`: the cluster's token (Ray's `RAY_AUTH_MODE=token`), for an adapter this
    executor starts; ranks never get it, so they cannot reach the GCS.
    """

    socket: Path | None = None
    address: str | None = None
    adapter_prefix: tuple[str, ...] = ()
    python: str = sys.executable
    rules: RayInventoryRules = field(default_factory=RayInventoryRules)
    cpus_per_rank: float = 0.01
    ready_timeout_s: float = 30.0
    start_timeout_s: float = 60.0
    request_timeout_s: float = 120.0
    adapter_start_timeout_s: float = 120.0
    ship_code: bool = False
    status_interval_s: float = 1.0
    auth_token_file: str | None = None


class AdapterClient:
    """One JSON-lines request per connection to the Ray adapter (see `suan.exec.ray_adapter`)."""

    def __init__(self, path: Path, timeout_s: float = 120.0):
        self.path = Path(path)
        self.timeout_s = timeout_s

    def reachable(self) -> bool:
        try:
            self.request("ping", timeout_s=5)
        except EngineError:
            return False
        return True

    def request(self, op: str, timeout_s: float | None = None, **fields: Any) -> Any:
        """The result of `op`; raises EngineError when the adapter is unreachable or refuses."""
        line = json.dumps({"op": op, **fields}).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout_s or self.timeout_s)
                sock.connect(str(self.path))
                sock.sendall(line)
                with sock.makefile("rb") as stream:
                    answer = stream.readline()
        except OSError as exc:
            raise EngineError(f"ray adapter at {self.path} unreachable: {exc}") from None
        if not answer:
            raise EngineError(f"ray adapter at {self.path} closed the connection on {op!r}")
        reply = json.loads(answer)
        if not reply.get("ok"):
            raise EngineError(str(reply.get("error")))
        return reply.get("result")


@dataclass
class _Tracked:
    """The ranks of the current attempt of one job, and any stop under way."""

    attempt: int
    name: str
    handles: list[RankHandle]
    stop_deadline: float | None = None
    killed: bool = False
    released: bool = False
    engine_devices: bool = False
    vanished: dict[int, int] = field(default_factory=dict)
    """rank -> pid of ranks whose actor died (their process group is reaped on release)."""
    report: dict[str, Any] | None = None
    """The adapter's last word on the launch, and when it came (monotonic seconds)."""
    report_at: float = 0.0
    exits_seen: int = 0


class RayExecutor:
    """Runs ranks as Ray actors through the adapter; see the module docstring."""

    engine = "ray"

    def __init__(
        self, home: Path, settings: RaySettings | None = None, catalog: Catalog | None = None
    ):
        self.home = Path(home)
        self.files = JobFiles(self.home)
        self.settings = settings or RaySettings()
        self.catalog = catalog or default_catalog()
        path = self.settings.socket or self.home / "ray-adapter.sock"
        self.client = AdapterClient(path, self.settings.request_timeout_s)
        self._jobs: dict[str, _Tracked] = {}
        self._adapter: subprocess.Popen | None = None

    # -- the adapter -------------------------------------------------------------------------
    def _request(self, op: str, **fields: Any) -> Any:
        try:
            return self.client.request(op, **fields)
        except EngineError:
            if self.client.path.exists() and self.client.reachable():
                raise  # the adapter answered: a refusal, not an outage
            if not self._start_adapter():
                raise
        return self.client.request(op, **fields)

    def _start_adapter(self) -> bool:
        """Start the adapter when none answers and an address is known; True once it answers."""
        if not self.settings.address:
            return False
        if self._adapter is None or self._adapter.poll() is not None:
            self.home.mkdir(parents=True, exist_ok=True)
            argv = [
                *self.settings.adapter_prefix,
                self.settings.python,
                "-m",
                "suan.exec.ray_adapter",
                "--address",
                self.settings.address,
                "--socket",
                str(self.client.path),
            ]
            env = dict(os.environ)
            if self.settings.auth_token_file:
                env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=self.settings.auth_token_file)
            with open(self.home / "ray-adapter.log", "ab") as log:
                self._adapter = subprocess.Popen(
                    argv,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        deadline = time.monotonic() + self.settings.adapter_start_timeout_s
        while time.monotonic() < deadline:
            if self.client.reachable():
                return True
            if self._adapter.poll() is not None and not self.client.reachable():
                return False
            time.sleep(0.2)
        return False

    # -- the port ----------------------------------------------------------------------------
    def inventory(self) -> tuple[Node, ...]:
        """Ray's nodes as scheduler Nodes (see `suan.exec.ray_inventory`)."""
        return ray_nodes(self._request("nodes"), self.settings.rules, self.catalog)

    def launch(self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]) -> list[RankHandle]:
        """Start every rank of `job` on exactly the placement's nodes; see the module docstring."""
        if not job.command:
            raise ValueError(f"job {job.job_id} has no command")
        name = launch_name(job.job_id, job.attempt)
        nodes = {node.name: node for node in self.inventory()}
        missing = sorted({r.node for r in placement if r.node not in nodes})
        if missing:
            raise EngineError(f"ray: no node labelled {', '.join(missing)}")
        base = {k: v for k, v in base_environment().items() if not k.startswith("RAY_")}
        master = nodes[placement[0].node].labels.get("address") or "127.0.0.1"
        envs = rank_environments(job, placement, master, free_port(), base, self.catalog)
        visible = visible_devices_variable(job.accelerator, self.catalog)
        self.files.prepare(job)
        ranks, specs, seen, engine_devices = [], [], {}, False
        for rank, (replica, env) in enumerate(zip(placement, envs, strict=True)):
            node = nodes[replica.node]
            local = seen.get(replica.node, 0)
            seen[replica.node] = local + 1
            bundle, gpu = self._bundle(node, replica)
            engine_devices |= gpu
            if gpu and visible:
                env.pop(visible, None)  # the actor sets it from the ids Ray gives it
            self.files.exit_path(job.job_id, job.attempt, rank).unlink(missing_ok=True)
            entry = self.files.rank_entry(job, rank, replica.node, len(replica.devices), env)
            devices_file = entry["devices_file"]
            ranks.append(entry)
            specs.append(
                {
                    "node": replica.node,
                    "bundle": bundle,
                    "selector": self._selector(node),
                    "options": {
                        "num_cpus": bundle.get("CPU", 0),
                        "num_gpus": bundle.get("GPU", 0),
                        "resources": {
                            k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")
                        },
                        "runtime_env": self._runtime_env(job),
                    },
                    "start": {
                        "argv": [],  # filled below, once launch.json exists
                        "node": replica.node,
                        "local": local,
                        "node_var": NODE_VAR,
                        "local_var": LOCAL_VAR,
                        "pid_file": str(self.files.pid_path(job.job_id, job.attempt, rank)),
                        "devices_file": devices_file,
                        "visible_var": visible if gpu else None,
                        "gpu": gpu,
                        "placed": list(replica.devices),
                    },
                }
            )
        workdir = job.workdir if job.workdir and Path(job.workdir).is_dir() else None
        if self._runtime_env(job):
            workdir = ""  # the rank starts where Ray unpacked the working directory
        document = {
            "attempt": job.attempt,
            "python": self.settings.python,
            "shim": str(SHIM),
            "command": list(job.command),
            "node_var": NODE_VAR,
            "local_var": LOCAL_VAR,
            "devices_var": "",
            "visible_var": "",
            "workdir": str(self.files.job_dir(job.job_id)) if workdir is None else workdir,
            "ranks": ranks,
        }
        launch_json = self.files.write_launch(job, document)
        argv = [self.settings.python, "-I", "-S", str(RANK_STARTER), str(launch_json)]
        for spec in specs:
            spec["start"]["argv"] = argv
        result = self._request(
            "launch",
            name=name,
            ranks=specs,
            ready_timeout_s=self.settings.ready_timeout_s,
            start_timeout_s=self.settings.start_timeout_s,
        )
        handles = [
            self._handle(job.job_id, job.attempt, rank, replica, info, name)
            for rank, (replica, info) in enumerate(zip(placement, result["ranks"], strict=True))
        ]
        self._jobs[job.job_id] = _Tracked(job.attempt, name, handles, engine_devices=engine_devices)
        return list(handles)

    def _bundle(self, node: Node, replica: ReplicaPlacement) -> tuple[dict[str, float], bool]:
        """The rank's bundle on `node`, and whether Ray's GPU ids are used."""
        bundle: dict[str, float] = {"CPU": self.settings.cpus_per_rank}
        count = len(replica.devices)
        if not count:
            return bundle, False
        share = count * replica.milli / 1000
        key = node.labels.get("ray.resource", "")
        if key and key != "GPU":
            bundle[key] = share
        gpu = node.labels.get("ray.gpu") == "1" and replica.milli == 1000
        if gpu or key == "GPU":
            bundle["GPU"] = share
        return bundle, gpu

    def _selector(self, node: Node) -> dict[str, str]:
        label = self.settings.rules.node_label
        if label:
            return {label: node.name}
        return {"ray.io/node-id": node.labels["ray.node_id"]}

    def _handle(
        self,
        job_id: str,
        attempt: int,
        rank: int,
        replica: ReplicaPlacement,
        info: dict[str, Any],
        name: str,
    ) -> RankHandle:
        given = info.get("devices")
        devices = tuple(int(d) for d in given) if given is not None else replica.devices
        return RankHandle(
            job_id,
            attempt,
            rank,
            replica.node,
            devices,
            int(info.get("pid") or 0),
            int(info.get("ticks") or 0),
            str(self.files.log_path(job_id, rank)),
            engine_id=name,
        )

    def poll(self) -> dict[str, JobStatus]:
        """The status of every tracked job; escalates stops, releases finished launches."""
        if not self._jobs:
            return {}
        now = time.monotonic()
        self._refresh_reports(now)
        result = {}
        for job_id, tracked in self._jobs.items():
            report = tracked.report
            assert report is not None  # every launch without one was asked about above
            ranks = tuple(self._rank_status(job_id, tracked, e) for e in report["ranks"])
            status = JobStatus(
                job_id,
                tracked.attempt,
                ranks,
                stopping=tracked.stop_deadline is not None,
                message=f"ray: placement group {report['pg'] or 'gone'}",
            )
            if (
                tracked.stop_deadline is not None
                and not tracked.killed
                and now >= tracked.stop_deadline
            ):
                self._signal(tracked, signal.SIGKILL)
                tracked.killed = True
            if status.all_exited and not tracked.released:
                self._release(tracked)
            result[job_id] = status
        return result

    def _refresh_reports(self, now: float) -> None:
        """Ask the adapter about the launches whose last report is stale: older than
        `status_interval_s`, or a stop is under way, or a rank wrote its exit file since."""
        stale = []
        for job_id, tracked in self._jobs.items():
            exits = self.files.exit_count(job_id, tracked.attempt)
            if (
                tracked.report is None
                or tracked.stop_deadline is not None
                or exits != tracked.exits_seen
                or now - tracked.report_at >= self.settings.status_interval_s
            ):
                tracked.exits_seen = exits
                stale.append(tracked)
        if not stale:
            return
        launches = [{"name": t.name, "world": len(t.handles)} for t in stale]
        for tracked, report in zip(stale, self._request("status", launches=launches), strict=True):
            tracked.report, tracked.report_at = report, now

    def _rank_status(self, job_id: str, tracked: _Tracked, entry: dict[str, Any]) -> RankStatus:
        """Running while the subprocess runs (or Ray does not answer); else the exit file's
        code, the subprocess's code, or None for a dead or missing actor."""
        rank = int(entry["rank"])
        devices = tracked.handles[rank].devices if tracked.engine_devices else None
        code = self.files.exit_code(job_id, tracked.attempt, rank)
        if entry["state"] in ("dead", "missing"):
            tracked.vanished[rank] = tracked.handles[rank].pid
        if code is None and entry["state"] in ("running", "unknown"):
            return RankStatus(rank, True, devices=devices)
        if code is None and entry["state"] == "exited":
            returned = int(entry["returncode"])
            code = 128 - returned if returned < 0 else returned
        return RankStatus(rank, False, code, devices=devices)

    def stop(self, job_id: str, grace_s: float) -> None:
        """SIGTERM (then SIGCONT, so that a stopped rank acts on it) every rank's process group
        now; `poll()` sends SIGKILL after `grace_s`."""
        tracked = self._jobs.get(job_id)
        if tracked is None or tracked.stop_deadline is not None:
            return
        tracked.stop_deadline = time.monotonic() + grace_s
        self._signal(tracked, signal.SIGTERM)
        self._signal(tracked, signal.SIGCONT)

    def _signal(self, tracked: _Tracked, number: int) -> None:
        self._request("signal", name=tracked.name, world=len(tracked.handles), signal=int(number))

    def _release(self, tracked: _Tracked) -> None:
        reap = [{"rank": rank, "pid": pid} for rank, pid in tracked.vanished.items()]
        self._request("release", name=tracked.name, world=len(tracked.handles), reap=reap)
        tracked.released = True

    def logs(
        self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20
    ) -> tuple[bytes, int]:
        """Up to `limit` bytes of rank `rank`'s log from `offset`, and the offset after them."""
        return self.files.read_log(job_id, rank, offset, limit)

    def _runtime_env(self, job: JobLaunch) -> dict[str, Any] | None:
        """Ray's runtime_env for the rank actors: the job's directory when code is shipped."""
        if self.settings.ship_code and job.workdir and Path(job.workdir).is_dir():
            return {"working_dir": job.workdir}
        return None

    def adopt(self, handles: list[RankHandle]) -> None:
        """Track ranks that an earlier server launched (their group and actors are detached)."""
        for job_id, ranks in handles_by_job(handles).items():
            if job_id in self._jobs:
                continue
            name = ranks[0].engine_id or launch_name(job_id, ranks[0].attempt)
            if [h.rank for h in ranks] != list(range(len(ranks))):
                ranks = self._fill(ranks, name)
            attempt = ranks[0].attempt
            picked = self.files.run_dir(job_id, attempt).glob("rank-*.devices")
            self._jobs[job_id] = _Tracked(attempt, name, ranks, engine_devices=any(picked))

    def _fill(self, ranks: list[RankHandle], name: str) -> list[RankHandle]:
        """Handles for ranks 0..max, so that status indexes by rank (missing ones stay empty)."""
        by_rank = {h.rank: h for h in ranks}
        first = ranks[0]
        return [
            by_rank.get(i)
            or RankHandle(first.job_id, first.attempt, i, "", (), 0, 0, "", engine_id=name)
            for i in range(max(by_rank) + 1)
        ]

    def forget(self, job_id: str) -> None:
        """Stop tracking `job_id`; its actors and group go too if they had not gone yet."""
        tracked = self._jobs.pop(job_id, None)
        if tracked is not None and not tracked.released:
            with contextlib.suppress(EngineError):
                self._release(tracked)

    def discover(self, job_id: str, attempt: int) -> list[RankHandle]:
        """The ranks of a launch a crash cut short, found by the group's name."""
        name = launch_name(job_id, attempt)
        found = self._request("find", name=name)
        if not found:
            return []
        handles = []
        for entry in found["ranks"]:
            rank = int(entry["rank"])
            node = str((entry.get("labels") or {}).get(self.settings.rules.node_label, ""))
            handles.append(
                RankHandle(
                    job_id,
                    attempt,
                    rank,
                    node or self._pid_file_node(job_id, attempt, rank),
                    self._recorded_devices(job_id, attempt, rank),
                    int(entry.get("pid") or 0),
                    int(entry.get("ticks") or 0),
                    str(self.files.log_path(job_id, rank)),
                    engine_id=name,
                )
            )
        return sorted(handles, key=lambda h: h.rank)

    def _pid_fields(self, job_id: str, attempt: int, rank: int) -> list[str]:
        try:
            return self.files.pid_path(job_id, attempt, rank).read_text().split()
        except OSError:
            return []

    def _pid_file_node(self, job_id: str, attempt: int, rank: int) -> str:
        fields = self._pid_fields(job_id, attempt, rank)
        return fields[2] if len(fields) > 2 else ""

    def _recorded_devices(self, job_id: str, attempt: int, rank: int) -> tuple[int, ...]:
        fields = self._pid_fields(job_id, attempt, rank)
        if len(fields) > 3 and fields[3]:
            with contextlib.suppress(ValueError):
                return tuple(int(d) for d in fields[3].split(","))
        return ()

    def tracked(self) -> set[str]:
        return set(self._jobs)


class RaySection(BaseModel):
    """`ray:` in the server config file; each field as in `RaySettings`.

    ray:
      socket: /run/suan/ray-adapter.sock
      address: 127.0.0.1:26379        # starts the adapter when nobody serves `socket`
      netns: suanray                  # = adapterPrefix [ip, netns, exec, suanray]
      nodeLabel: suan/node
      topology: {rack: suan/rack}
      defaultType: H100               # a bare Ray GPU resource means this type
      simulated: false                # devices are slots backed by CPU processes
      authTokenFile: /etc/suan/ray-token   # the cluster's token (RAY_AUTH_MODE=token)
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    socket: str | None = None
    address: str | None = None
    netns: str | None = None
    adapter_prefix: list[str] | None = PydanticField(default=None, alias="adapterPrefix")
    python: str | None = None
    node_label: str = PydanticField(default="suan/node", alias="nodeLabel")
    topology: dict[Literal["zone", "block", "rack", "supernode"], str] | None = None
    default_type: str | None = PydanticField(default=None, alias="defaultType")
    simulated: bool = False
    cpus_per_rank: float = PydanticField(default=0.01, gt=0, alias="cpusPerRank")
    ready_timeout_s: float = PydanticField(default=30.0, gt=0, alias="readyTimeoutSeconds")
    ship_code: bool = PydanticField(default=False, alias="shipCode")
    start_timeout_s: float = PydanticField(default=60.0, gt=0, alias="startTimeoutSeconds")
    auth_token_file: str | None = PydanticField(default=None, alias="authTokenFile")


def from_settings(
    home: Path, section: Mapping[str, Any], catalog: Catalog
) -> tuple[RayExecutor, bool]:
    """The executor for the server config's `ray:` section (see `suan.exec.engines`)."""
    try:
        parsed = RaySection.model_validate(dict(section))
    except ValidationError as exc:
        raise SpecError("server config", describe_errors(exc, RaySection, "ray")) from None
    problems = []
    if parsed.default_type is not None and catalog.find(parsed.default_type) is None:
        problems.append(
            FieldProblem(
                "ray.defaultType",
                f"{parsed.default_type!r} is not in the accelerator catalog",
                "a catalog name or alias (suan catalog)",
            )
        )
    if parsed.netns and parsed.adapter_prefix is not None:
        problems.append(FieldProblem("ray.netns", "give netns or adapterPrefix, not both"))
    if problems:
        raise SpecError("server config", problems)
    prefix = parsed.adapter_prefix or []
    if parsed.netns:
        prefix = ["ip", "netns", "exec", parsed.netns]
    default_rules = RayInventoryRules()
    rules = RayInventoryRules(
        node_label=parsed.node_label,
        topology_labels=parsed.topology or default_rules.topology_labels,
        default_type=parsed.default_type,
    )
    settings = RaySettings(
        socket=Path(parsed.socket) if parsed.socket else None,
        address=parsed.address,
        adapter_prefix=tuple(prefix),
        rules=rules,
        cpus_per_rank=parsed.cpus_per_rank,
        ready_timeout_s=parsed.ready_timeout_s,
        start_timeout_s=parsed.start_timeout_s,
        ship_code=parsed.ship_code,
        auth_token_file=parsed.auth_token_file,
        **({"python": parsed.python} if parsed.python else {}),
    )
    return RayExecutor(home, settings, catalog), parsed.simulated
