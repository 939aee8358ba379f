"""Engine overhead: what Suan adds on the local, Slurm and Ray engines, against their targets.

For each engine it starts what it needs itself -- nothing for `local`; for `slurm` and `ray`
a local cluster through scripts/local-cluster.sh with its own SUAN_CLUSTER_DIR, ports and
network namespace, so that it does not collide with a cluster or a test run already on the
machine -- and a real `suan server` (`--devices 8xH100` on local, `--config` with the
cluster's suan.yaml otherwise) in a temporary home, driven through the Python SDK. It measures:

- `submit_to_running`: from just before `Client.submit` of a 4-rank job (2 replicas of 2
  devices, one process per device, spread: 2 ranks on each of 2 nodes; the local engine has one
  node) until every rank has executed the first line of its command, which prints
  `START <time.time()> <RANK> <SUAN_RESTART_COUNT>` (read back through `Client.logs`);
- `gang_back_after_rank_kill`: a 4-rank job of the same shape whose ranks print that line and
  sleep; once all run, one rank's process (rank 2, found in /proc by SUAN_JOB_ID and RANK) is
  SIGKILLed, and the time is taken until every rank of the restarted gang has printed its
  START line with a restart count of 1;
- `throughput_ratio_vs_engine_launcher`: the GPT example (examples/gpt/train.py, 4 ranks, DDP
  over gloo, no --step-seconds) under Suan over the same script started by the engine's own
  launcher on the same nodes -- 4 plain `python train.py` processes (local), `sbatch` with
  `srun` and the torchrun variables from SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID (slurm), a
  plain Ray driver with 4 actors in a placement group (ray) -- from the last `tokens/s` line of
  rank 0, median of interleaved runs (Suan, engine, Suan, engine, ...).

Each engine's entry also has a `profile`: where the time goes, as median seconds after the
submit (or the kill) of each milestone that left a trace -- the job's events (scheduled,
running, rank-failed, restarting), the mtimes of the files the executor and the rank starter
wrote (launch.json, batch.sh, rank-N.pid or rank-N.devices), and on Slurm slurmctld's log
(sbatch received, job started) -- and, for the training runs, the CPU share of the Suan server
and of the engine service it talks to (slurmctld, the Ray adapter); on Ray also how long a plain
driver waits for its placement group and 4 actors.

Progress goes to stderr; stdout gets one JSON object. Everything started here is stopped in
`finally` by PID (servers, ranks) or by the cluster script (by recorded PID and network
namespace), never by name.

    .venv/bin/python bench/engine_overhead.py [--engines local,slurm,ray] [--trials 5]
        [--gang-trials 3] [--runs 5] [--steps 300] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "local-cluster.sh"
GPT = ROOT / "examples" / "gpt" / "train.py"
ENGINES = ("local", "slurm", "ray")
TARGETS = {
    "submit_to_running_s": {"slurm": 2.0, "ray": 5.0},
    "gang_back_after_rank_kill_s": 30.0,
    "throughput_ratio_vs_engine_launcher": 0.98,
}
RANK_CODE = (
    "import time; t = time.time(); import os, sys; "
    "print('START', repr(t), os.environ.get('RANK'), os.environ.get('SUAN_RESTART_COUNT', '0'), "
    "flush=True); time.sleep(float(sys.argv[1]))"
)
START_LINE = re.compile(r"^START (\S+) (\d+) (\d+)$", re.MULTILINE)
RANKS = 4


def say(*words: object) -> None:
    print(time.strftime("%H:%M:%S"), *words, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "p90_s": round(p90, 3),
        "max_s": round(ordered[-1], 3),
        "trials_s": [round(v, 3) for v in values],
    }


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the median over the rows that have it."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: round(statistics.median(r[k] for r in rows if k in r), 3) for k in keys}


def ordered(marks: dict[str, float]) -> dict[str, float]:
    """Milestones in the order they happened."""
    return dict(sorted(marks.items(), key=lambda item: item[1]))


# -- the engines' clusters ---------------------------------------------------------------------
@dataclass
class Engine:
    """A running engine: the server's engine flags, the environment of its own tools."""

    name: str
    server_args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def run_script(engine: str, action: str, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), engine, action],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{engine} {action} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return done.stdout


def start_local(stack: contextlib.ExitStack) -> Engine:
    return Engine("local", ["--devices", "8xH100"])


def slurm_port_base() -> int:
    """A SUAN_SLURM_PORT whose ports (slurmctld +17, slurmd +18, nodes +201..+204) are free."""
    for base in range(41800, 60000, 100):
        if all(port_free(base + p) for p in (17, 18, 201, 202, 203, 204)):
            return base
    raise RuntimeError("no free port range for a Slurm cluster")


def recorded_pids(directory: Path, patterns: list[str]) -> list[int]:
    pids = []
    for pattern in patterns:
        for path in directory.glob(pattern):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(path.read_text().split()[0]))
    return pids


def drain_slurm(env: dict[str, str], wait_s: float = 30.0) -> None:
    """Cancel every job of the cluster and wait until none runs or completes, so that its
    daemons then stop cleanly (a slurmd stopped mid-step leaves its slurmstepd behind)."""
    deadline = time.monotonic() + wait_s
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["scancel", "--partition=suan"], env=env, timeout=30, check=False)
        while time.monotonic() < deadline:
            states = subprocess.run(
                ["squeue", "-h", "--states=all", "-o", "%T"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.split()
            if not set(states) & {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}:
                return
            time.sleep(0.5)


def processes_with_env(item: str) -> list[int]:
    """Pids of the processes whose environment holds `item` (NAME=value)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if item.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
    return found


def reap(pids: list[int], marker: str, wait_s: float = 30.0, environ: bool = False) -> None:
    """Wait for `pids` (SIGTERMed by the cluster script) to exit; SIGKILL those still there
    after `wait_s` whose command line (or environment, with `environ`) still names `marker`,
    the cluster directory. A slurmd that is ending a job step takes several seconds to go."""

    def ours(pid: int) -> bool:
        try:
            text = Path(f"/proc/{pid}/{'environ' if environ else 'cmdline'}").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return marker.encode() in text and state != "Z"

    deadline = time.monotonic() + wait_s
    while any(ours(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if ours(pid):
            say(f"killing pid {pid} ({marker}), still running after {wait_s:g}s")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def start_slurm(stack: contextlib.ExitStack) -> Engine:
    cluster = Path(f"/tmp/suan-bench-slurm-{os.getpid()}")
    base = slurm_port_base()
    env = {**os.environ, "SUAN_CLUSTER_DIR": str(cluster), "SUAN_SLURM_PORT": str(base)}

    def stop() -> None:
        say("slurm: stopping the cluster", cluster)
        conf = str(cluster / "slurm.conf")
        drain_slurm({**os.environ, "SLURM_CONF": conf})
        daemons = recorded_pids(cluster, ["ctld.bgpid", "munge.bgpid", "slurmd-*.bgpid"])
        with contextlib.suppress(Exception):
            run_script("slurm", "stop", env, 120)
        reap(daemons, str(cluster))
        # A slurmstepd whose slurmd went first stays behind: it carries our SLURM_CONF.
        reap(processes_with_env(f"SLURM_CONF={conf}"), str(cluster), wait_s=0, environ=True)
        shutil.rmtree(cluster, ignore_errors=True)

    stack.callback(stop)
    say(f"slurm: starting 4 slurmd in {cluster} (ports {base}+)")
    began = time.monotonic()
    run_script("slurm", "start", env, 600)
    return Engine(
        "slurm",
        ["--config", str(cluster / "suan.yaml")],
        env={**os.environ, "SLURM_CONF": str(cluster / "slurm.conf")},
        info={"cluster": cluster, "cluster_start_s": round(time.monotonic() - began, 1)},
    )


def start_ray(stack: contextlib.ExitStack) -> Engine:
    if shutil.which("ip") is None:
        raise RuntimeError("the local Ray cluster needs `ip` (iproute2) for its network namespace")
    # Ray's AF_UNIX socket paths must stay short: a short directory under /tmp.
    cluster = Path(f"/tmp/sbray-{os.getpid()}")
    netns = f"sbench{os.getpid()}"
    env = {**os.environ, "SUAN_CLUSTER_DIR": str(cluster), "SUAN_RAY_NETNS": netns}

    def stop() -> None:
        say("ray: stopping the cluster", cluster, "netns", netns)
        with contextlib.suppress(Exception):
            run_script("ray", "stop", env, 180)
        shutil.rmtree(cluster, ignore_errors=True)

    stack.callback(stop)
    say(f"ray: starting a head and 2 workers in netns {netns} ({cluster})")
    began = time.monotonic()
    out = run_script("ray", "start", env, 600)
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    return Engine(
        "ray",
        ["--config", str(cluster / "suan.yaml")],
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        info={
            "cluster": cluster,
            "netns": exported.get("SUAN_RAY_NETNS", netns),
            "address": exported.get("SUAN_RAY_ADDRESS", "127.0.0.1:26379"),
            "cluster_start_s": round(time.monotonic() - began, 1),
        },
    )


STARTERS = {"local": start_local, "slurm": start_slurm, "ray": start_ray}


def daemons(server: Server, engine: Engine) -> dict[str, tuple[int, bool]]:
    """The processes whose CPU a training run pays for besides its ranks: the Suan server (with
    the squeue/sinfo it runs; on local without its children, which are the ranks) and the
    engine's own service the server talks to. name -> (pid, count its children)."""
    found = {}
    if server.process is not None:
        found["suan_server"] = (server.process.pid, engine.name != "local")
    cluster = engine.info.get("cluster")
    pid_file = {"slurm": "ctld.bgpid", "ray": "pids/adapter"}.get(engine.name)
    if cluster is not None and pid_file is not None:
        with contextlib.suppress(OSError, ValueError):
            name = "slurmctld" if engine.name == "slurm" else "suan_ray_adapter"
            found[name] = (int((cluster / pid_file).read_text()), True)
    return found


class CpuMeter:
    """CPU seconds per wall second of some processes over a `with` block."""

    def __init__(self, pids: dict[str, tuple[int, bool]]):
        self.pids = pids
        self.share: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self.began = time.monotonic()
        self.before = {name: cpu_seconds(*which) for name, which in self.pids.items()}
        return self

    def __exit__(self, *_: object) -> None:
        wall = max(1e-9, time.monotonic() - self.began)
        self.share = {
            name: round((cpu_seconds(*which) - self.before[name]) / wall, 4)
            for name, which in self.pids.items()
        }


# -- the Suan server ---------------------------------------------------------------------------
class Server:
    """One `suan server` in a temporary home; `stop()` cancels what it runs first."""

    def __init__(self, home: Path, engine: Engine, args: argparse.Namespace):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [
            sys.executable,
            "-m",
            "suan.cli.main",
            "server",
            "--home",
            str(home),
            "--port",
            str(self.port),
            *engine.server_args,
            "--tick",
            str(args.tick),
            "--restart-backoff",
            str(args.restart_backoff),
            "--stop-grace",
            str(args.stop_grace),
        ]
        self.process: subprocess.Popen | None = None
        self.client: Any = None
        self.jobs: list[str] = []

    def start(self, timeout: float = 180.0) -> None:
        from suan.client import Client

        self.home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("SUAN_TOKEN", "SUAN_SERVER")}
        with open(self.home / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        probe = Client(self.url, token="")
        while not ((self.home / "admin-token").exists() and probe.healthy()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.home / "server.log").read_text()[-3000:]
                raise RuntimeError(f"suan server did not start:\n{tail}")
            time.sleep(0.2)
        probe.close()
        self.client = Client(self.url, token=(self.home / "admin-token").read_text().strip())

    def submit(self, spec: str, workdir: Path) -> str:
        [job_id] = self.client.submit(spec, workdir=str(workdir))
        self.jobs.append(job_id)
        return job_id

    def finish(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Cancel `job_id` unless it has ended; its final summary."""
        job = self.client.describe(job_id)
        if job["state"] not in ("succeeded", "failed", "cancelled"):
            self.client.cancel(job_id)
            job = self.client.wait(job_id, timeout=timeout, poll_s=0.2)
        return job

    def stop(self) -> None:
        if self.client is not None:
            for job_id in self.jobs:
                with contextlib.suppress(Exception):
                    self.finish(job_id, timeout=30)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.client is not None:
            self.client.close()
        kill_recorded_ranks(self.home)


def start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(pid: int | None, children: bool = True) -> float:
    """CPU time of `pid` (utime+stime), with its reaped children's (cutime+cstime) when
    `children`; 0 when it is gone."""
    if not pid:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = fields[11:15] if children else fields[11:13]
        return sum(int(x) for x in ticks) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def kill_recorded_ranks(home: Path) -> None:
    """SIGKILL the process group of every rank a pid file under `home` names, when that pid
    is still the same process (same start time) -- ranks a cancel left behind."""
    for pid_file in home.glob("jobs/*/run/*/rank-*.pid"):
        with contextlib.suppress(ValueError, OSError, IndexError):
            words = pid_file.read_text().split()
            pid, ticks = int(words[0]), int(words[1])
            if pid > 1 and start_ticks(pid) == ticks:
                os.killpg(pid, signal.SIGKILL)


# -- jobs and what their ranks print ---------------------------------------------------------
def job_yaml(name: str, command: list[str], restart: str, env: dict[str, str] | None = None) -> str:
    """4 ranks: 2 replicas of 2 devices, one process per device, replicas spread over nodes."""
    env = {"OMP_NUM_THREADS": "1", **(env or {})}
    return (
        f"apiVersion: suan.ai/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n"
        f"  replicas: 2\n  accelerators: {{count: 2, type: H100}}\n"
        f"  processes: per-device\n  topology: {{placement: spread}}\n"
        f"  command: {json.dumps(command)}\n  env: {json.dumps(env)}\n"
        f"  restartPolicy: {restart}\n  maxRestarts: 3\n"
    )


def rank_job(name: str, sleep_s: float, restart: str) -> str:
    return job_yaml(name, [sys.executable, "-c", RANK_CODE, str(sleep_s)], restart)


def start_lines(server: Server, job_id: str, restart: int) -> dict[int, float]:
    """rank -> time of its first START line with this restart count (ranks seen so far)."""
    from suan.client import ApiError

    found = {}
    for rank in range(RANKS):
        try:
            text = server.client.logs(job_id, rank=rank)["data"]
        except ApiError:
            continue
        for stamp, _, count in START_LINE.findall(text):
            if int(count) == restart:
                found[rank] = float(stamp)
                break
    return found


def wait_starts(server: Server, job_id: str, restart: int, timeout: float) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = start_lines(server, job_id, restart)
        if len(found) == RANKS:
            return found
        if time.monotonic() > deadline:
            job = server.client.describe(job_id)
            raise RuntimeError(
                f"job {job_id}: only ranks {sorted(found)} printed START (restart {restart}) "
                f"after {timeout:g}s; state {job['state']}: {job['reason']}"
            )
        time.sleep(0.05)


def event_times(job: dict[str, Any], after: float = 0.0) -> dict[str, float]:
    """kind -> time of the first event of that kind at or after `after`."""
    times: dict[str, float] = {}
    for event in job["events"]:
        if event["time"] >= after:
            times.setdefault(event["kind"], event["time"])
    return times


def nodes_of(job: dict[str, Any]) -> list[str]:
    return [r["node"] for r in sorted(job["ranks_detail"], key=lambda r: r["rank"])]


def rank_pid(job_id: str, rank: int) -> int | None:
    """The pid of rank `rank`'s own command (not the shim or the rank starter), from /proc."""
    want = {b"SUAN_JOB_ID=" + job_id.encode(), b"RANK=" + str(rank).encode()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ours = want <= environ and b"START" in cmdline
        if ours and b"_shim.py" not in cmdline and b"_rank.py" not in cmdline:
            return int(entry.name)
    return None


# -- submit -> running ----------------------------------------------------------------------
def slurm_log_times(engine: Engine, slurm_id: str) -> dict[str, float]:
    """sbatch received and job started, from slurmctld's log (wall clock, ms resolution)."""
    log = engine.info["cluster"] / "log" / "slurmctld.log"
    times = {}
    patterns = {
        "sbatch_received": rf"_slurm_rpc_submit_batch_job: JobId={slurm_id} ",
        "slurm_started": rf"(sched: Allocate JobId={slurm_id} |Started JobId={slurm_id} )",
    }
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            for key, pattern in patterns.items():
                if key not in times and re.search(pattern, line):
                    stamp = line[1 : line.index("]")]
                    times[key] = datetime.fromisoformat(stamp).timestamp()
    return times


def milestones(
    server: Server, engine: Engine, job: dict[str, Any], since: float
) -> dict[str, float]:
    """Seconds from `since` to each step of the job's current attempt that left a trace: the
    server's events, the files the executor and the rank starter wrote (mtimes), and on Slurm
    slurmctld's log."""
    events = event_times(job, after=since)
    out = {
        f"event_{kind}": events[kind] - since
        for kind in ("rank-failed", "stopping", "restarting", "scheduled", "running")
        if kind in events
    }
    run_dir = server.home / "jobs" / job["id"] / "run" / str(job["attempt"])
    for name in ("launch.json", "batch.sh"):
        with contextlib.suppress(OSError):
            out[f"{name}_written"] = (run_dir / name).stat().st_mtime - since
    # Rank processes: the pid file (local: after Popen; Ray: the actor's child started), else
    # the devices file (Slurm: _rank.py on the node, just before it becomes the shim).
    marks = sorted(f.stat().st_mtime for f in run_dir.glob("rank-*.pid"))
    marks = marks or sorted(f.stat().st_mtime for f in run_dir.glob("rank-*.devices"))
    if marks:
        out["rank_process_first"] = marks[0] - since
        out["rank_process_last"] = marks[-1] - since
    if engine.name == "slurm" and job["ranks_detail"]:
        slurm = slurm_log_times(engine, job["ranks_detail"][0]["engine_id"])
        out.update({key: value - since for key, value in slurm.items()})
    return out


def submit_trial(server: Server, engine: Engine, trial: int, work: Path) -> dict[str, Any]:
    began = time.time()
    job_id = server.submit(rank_job(f"s2r-{trial}", 0, "never"), work)
    returned = time.time()
    starts = wait_starts(server, job_id, 0, timeout=120)
    job = server.client.wait(job_id, timeout=120, poll_s=0.2)
    steps = {"http_submit_returned": returned - began}
    steps.update(milestones(server, engine, job, began))
    steps["first_line_first_rank"] = min(starts.values()) - began
    steps["first_line_all_ranks"] = max(starts.values()) - began
    return {"value": max(starts.values()) - began, "nodes": nodes_of(job), "steps": steps}


# -- gang back after a killed rank ----------------------------------------------------------
def gang_trial(server: Server, engine: Engine, trial: int, work: Path) -> dict[str, Any]:
    job_id = server.submit(rank_job(f"gang-{trial}", 3600, "on-failure"), work)
    wait_starts(server, job_id, 0, timeout=120)
    deadline = time.monotonic() + 30
    victim = rank_pid(job_id, 2)
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.1)
        victim = rank_pid(job_id, 2)
    if victim is None:
        raise RuntimeError(f"job {job_id}: rank 2's process not found in /proc")
    killed = time.time()
    os.kill(victim, signal.SIGKILL)
    starts = wait_starts(server, job_id, 1, timeout=180)
    job = server.client.describe(job_id)
    steps = milestones(server, engine, job, killed)
    steps["first_line_first_rank"] = min(starts.values()) - killed
    steps["first_line_all_ranks"] = max(starts.values()) - killed
    server.finish(job_id)
    return {"value": max(starts.values()) - killed, "nodes": nodes_of(job), "steps": steps}


# -- training throughput ----------------------------------------------------------------------
def tokens_per_s(text: str) -> float:
    rates = [line.split("tokens/s")[1] for line in text.splitlines() if "tokens/s" in line]
    if not rates:
        raise RuntimeError(f"no tokens/s line in:\n{text[-2000:]}")
    return float(rates[-1].replace(",", ""))


def gpt_argv(steps: int) -> list[str]:
    return [sys.executable, str(GPT), "--steps", str(steps), "--checkpoint-every", str(steps)]


def suan_gpt(server: Server, run: int, steps: int, work: Path) -> tuple[float, list[str]]:
    job_id = server.submit(job_yaml(f"gpt-{run}", gpt_argv(steps), "never"), work)
    job = server.client.wait(job_id, timeout=900, poll_s=1.0)
    text = server.client.logs(job_id, rank=0)["data"]
    if job["state"] != "succeeded":
        raise RuntimeError(f"GPT job {job_id} {job['state']}: {job['reason']}\n{text[-2000:]}")
    return tokens_per_s(text), nodes_of(job)


def local_gpt(steps: int, run_dir: Path) -> float:
    """4 plain `python train.py` processes with the torchrun variables."""
    port = free_port()
    out = run_dir / "rank0.out"
    processes = []
    with open(out, "wb") as rank0:
        for rank in range(RANKS):
            env = dict(
                os.environ,
                RANK=str(rank),
                WORLD_SIZE=str(RANKS),
                LOCAL_RANK=str(rank),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
                OMP_NUM_THREADS="1",
                SUAN_CHECKPOINT_DIR=str(run_dir / "ckpt"),
            )
            processes.append(
                subprocess.Popen(
                    gpt_argv(steps),
                    env=env,
                    cwd=ROOT,
                    stdout=rank0 if rank == 0 else subprocess.DEVNULL,
                    stderr=subprocess.STDOUT if rank == 0 else subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        try:
            codes = [p.wait(900) for p in processes]
        finally:
            for p in processes:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
    if any(codes):
        raise RuntimeError(f"plain GPT run failed {codes}:\n{out.read_text()[-2000:]}")
    return tokens_per_s(out.read_text())


def slurm_gpt(engine: Engine, steps: int, run_dir: Path, nodes: list[str]) -> float:
    """sbatch + srun, 2 tasks on each of the Suan run's 2 nodes, torchrun variables from srun."""
    order = list(dict.fromkeys(nodes))
    per_node = RANKS // len(order)
    out = run_dir / "slurm-%j.out"
    argv = " ".join(gpt_argv(steps))
    script = (
        "#!/bin/sh\n"
        f"#SBATCH --job-name=bench-srun --output={out} --no-requeue --partition=suan "
        f"--chdir={ROOT}\n"
        f"#SBATCH --nodelist={','.join(order)} --nodes={len(order)} "
        f"--ntasks-per-node={per_node} --gres=gpu:h100:{per_node}\n"
        f"export MASTER_ADDR=127.0.0.1 MASTER_PORT={free_port()} OMP_NUM_THREADS=1 "
        f"SUAN_CHECKPOINT_DIR={run_dir / 'ckpt'}\n"
        "exec srun --kill-on-bad-exit=1 sh -c 'export RANK=$SLURM_PROCID "
        f"WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID; exec {argv}'\n"
    )
    (run_dir / "batch.sh").write_text(script)
    done = subprocess.run(
        ["sbatch", "--parsable", str(run_dir / "batch.sh")],
        env=engine.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    slurm_id = done.stdout.strip().split(";")[0]
    # Poll the job ourselves: `sbatch --wait` sleeps up to 32 s between its own polls.
    deadline = time.monotonic() + 900
    state = "PENDING"
    while state in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"slurm job {slurm_id} still {state} after 900 s")
        time.sleep(1.0)  # as the Suan runs are polled
        state = subprocess.run(
            ["squeue", "-h", "--states=all", "-j", slurm_id, "-o", "%T"],
            env=engine.env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    text = (run_dir / f"slurm-{slurm_id}.out").read_text()
    if state != "COMPLETED":
        raise RuntimeError(f"slurm job {slurm_id} {state}:\n{text[-2000:]}")
    return tokens_per_s(text)


RAY_DRIVER = """
import json, os, subprocess, sys, time
import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

spec = json.loads(sys.argv[1])
ray.init(address=spec["address"], namespace="bench", logging_level="ERROR", log_to_driver=False)
t0 = time.monotonic()
bundle = {"CPU": 0.01, "GPU": 1, "accel:H100": 1}
pg = placement_group(
    [bundle] * len(spec["nodes"]), strategy="PACK",
    bundle_label_selector=[{"suan/node": node} for node in spec["nodes"]],
)
ray.get(pg.ready(), timeout=120)
pg_ready = time.monotonic() - t0


@ray.remote
class Rank:
    def ping(self):
        return os.getpid()

    def run(self, env, argv, cwd):
        full = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        full.update(env)
        done = subprocess.run(argv, env=full, cwd=cwd, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr[-2000:]


world = len(spec["nodes"])
actors = [
    Rank.options(
        num_cpus=0.01, num_gpus=1, resources={"accel:H100": 1},
        scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i),
    ).remote()
    for i in range(world)
]
ray.get([actor.ping.remote() for actor in actors], timeout=120)
actors_ready = time.monotonic() - t0
local = {}
refs = []
for rank, (actor, node) in enumerate(zip(actors, spec["nodes"])):
    env = {
        "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(local.get(node, 0)),
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(spec["port"]),
        "OMP_NUM_THREADS": "1", "SUAN_CHECKPOINT_DIR": spec["ckpt"],
    }
    local[node] = local.get(node, 0) + 1
    refs.append(actor.run.remote(env, spec["argv"], spec["cwd"]))
results = ray.get(refs, timeout=900)
for actor in actors:
    ray.kill(actor)
remove_placement_group(pg)
print(json.dumps({"codes": [r[0] for r in results], "rank0": results[0][1],
                  "stderr": results[0][2], "pg_ready_s": pg_ready,
                  "pg_and_4_actors_ready_s": actors_ready}))
"""


def ray_gpt(
    engine: Engine, steps: int, run_dir: Path, nodes: list[str]
) -> tuple[float, dict[str, float]]:
    """A plain Ray driver (in the cluster's netns): a placement group of 4 bundles on the Suan
    run's nodes, one actor per rank running train.py with the torchrun variables."""
    driver = run_dir / "driver.py"
    driver.write_text(RAY_DRIVER)
    spec = {
        "address": engine.info["address"],
        "nodes": nodes,
        "port": free_port(),
        "ckpt": str(run_dir / "ckpt"),
        "argv": gpt_argv(steps),
        "cwd": str(ROOT),
    }
    netns = ["ip", "netns", "exec", engine.info["netns"]]
    done = subprocess.run(
        [*netns, sys.executable, str(driver), json.dumps(spec)],
        env=engine.env,
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"ray driver failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    if any(result["codes"]):
        raise RuntimeError(f"ray ranks failed {result['codes']}:\n{result['stderr']}")
    floor = {k: result[k] for k in ("pg_ready_s", "pg_and_4_actors_ready_s")}
    return tokens_per_s(result["rank0"]), floor


def throughput(server: Server, engine: Engine, runs: int, steps: int, work: Path) -> dict[str, Any]:
    suan, native, nodes, floors = [], [], [], []
    cpu_suan, cpu_native = [], []
    for run in range(runs):
        with CpuMeter(daemons(server, engine)) as meter:
            rate, nodes = suan_gpt(server, run, steps, work)
        suan.append(rate)
        cpu_suan.append(meter.share)
        say(f"{engine.name}: throughput run {run + 1}/{runs}: suan {rate:,.0f} tokens/s on {nodes}")
        run_dir = work / f"native-{run}"
        run_dir.mkdir()
        with CpuMeter(daemons(server, engine)) as meter:
            if engine.name == "local":
                rate = local_gpt(steps, run_dir)
            elif engine.name == "slurm":
                rate = slurm_gpt(engine, steps, run_dir, nodes)
            else:
                rate, floor = ray_gpt(engine, steps, run_dir, nodes)
                floors.append(floor)
        native.append(rate)
        cpu_native.append(meter.share)
        say(f"{engine.name}: throughput run {run + 1}/{runs}: engine {rate:,.0f} tokens/s")
    launcher = {
        "local": "4 plain `python train.py` processes (RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT)",
        "slurm": "sbatch + srun, 2 tasks per node on the same 2 nodes, RANK from SLURM_PROCID",
        "ray": "plain Ray driver: placement group of 4 bundles on the same nodes, 1 actor/rank",
    }[engine.name]
    report = {
        "ratio": round(statistics.median(suan) / statistics.median(native), 4),
        "suan_tokens_per_s": [round(r) for r in suan],
        "engine_tokens_per_s": [round(r) for r in native],
        "paired_ratios": [round(s / n, 4) for s, n in zip(suan, native, strict=True)],
        "paired_ratio_median": round(
            statistics.median(s / n for s, n in zip(suan, native, strict=True)), 4
        ),
        "steps": steps,
        "engine_launcher": launcher,
        "cpu_cores_busy_during_suan_runs": medians(cpu_suan),
        "cpu_cores_busy_during_engine_runs": medians(cpu_native),
    }
    if floors:
        report["ray_driver_launch_s"] = medians(floors)
    return report


# -- one engine -------------------------------------------------------------------------------
def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        engine = STARTERS[name](stack)
        work = Path(tempfile.mkdtemp(prefix=f"suan-bench-{name}-"))
        stack.callback(shutil.rmtree, work, True)
        server = Server(work / "home", engine, args)
        stack.callback(server.stop)
        say(f"{name}: starting suan server ({' '.join(engine.server_args)})")
        began = time.monotonic()
        server.start()
        server_start = time.monotonic() - began

        submits = []
        for trial in range(args.trials):
            result = submit_trial(server, engine, trial, work)
            submits.append(result)
            say(
                f"{name}: submit->running trial {trial + 1}/{args.trials}: "
                f"{result['value']:.2f}s on {sorted(set(result['nodes']))}"
            )
        gangs = []
        for trial in range(args.gang_trials):
            result = gang_trial(server, engine, trial, work)
            gangs.append(result)
            say(
                f"{name}: gang back after kill trial {trial + 1}/{args.gang_trials}: "
                f"{result['value']:.2f}s"
            )
        trained = throughput(server, engine, args.runs, args.steps, work)

    nodes = {len(set(r["nodes"])) for r in submits + gangs}
    s2r = summary([r["value"] for r in submits])
    gang = summary([r["value"] for r in gangs])
    entry: dict[str, Any] = {
        "submit_to_running_p50_s": s2r["p50_s"],
        "submit_to_running": s2r,
        "gang_back_after_rank_kill_s": gang["p50_s"],
        "gang_back_after_rank_kill": gang,
        "nodes_used": max(nodes),
        "throughput_ratio_vs_engine_launcher": trained["ratio"],
        "throughput": trained,
        "profile": {
            "submit_to_running_s_after_submit_median": ordered(
                medians([r["steps"] for r in submits])
            ),
            "gang_back_s_after_kill_median": ordered(medians([r["steps"] for r in gangs])),
            "server_start_s": round(server_start, 1),
        },
        "placement": sorted(set(submits[0]["nodes"])),
    }
    if name == "local":
        entry["note"] = "one node: the local engine runs every rank on this machine (nodes_used 1)"
    if "cluster_start_s" in engine.info:
        entry["profile"]["cluster_start_s"] = engine.info["cluster_start_s"]
    entry["targets_met"] = targets_met(name, entry)
    return entry


def targets_met(name: str, entry: dict[str, Any]) -> dict[str, bool]:
    met = {}
    limit = TARGETS["submit_to_running_s"].get(name)
    if limit is not None:
        met["submit_to_running"] = entry["submit_to_running_p50_s"] < limit
    met["gang_back"] = entry["gang_back_after_rank_kill_s"] < TARGETS["gang_back_after_rank_kill_s"]
    met["throughput"] = (
        entry["throughput_ratio_vs_engine_launcher"]
        >= TARGETS["throughput_ratio_vs_engine_launcher"]
    )
    return met


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def slurm_version() -> str:
    """slurmctld's version (it needs no slurm.conf for -V)."""
    if shutil.which("slurmctld") is None:
        return "not installed"
    done = subprocess.run(["slurmctld", "-V"], capture_output=True, text=True, check=False)
    return done.stdout.strip().split()[-1] if done.stdout.strip() else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma list of engines")
    parser.add_argument("--trials", type=int, default=5, help="submit->running trials")
    parser.add_argument("--gang-trials", type=int, default=3, help="rank-kill trials")
    parser.add_argument("--runs", type=int, default=5, help="interleaved throughput runs each")
    parser.add_argument("--steps", type=int, default=300, help="GPT steps per throughput run")
    parser.add_argument("--tick", type=float, default=0.25, help="server --tick (its default)")
    parser.add_argument("--restart-backoff", type=float, default=0.3)
    parser.add_argument("--stop-grace", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="2 trials, 1 kill, 1 run, 60 steps")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.gang_trials, args.runs, args.steps = 2, 1, 1, 60
    engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}; choose from {','.join(ENGINES)}")
    # SIGTERM unwinds like Ctrl-C, so that every `finally` stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report: dict[str, Any] = {
        "benchmark": "engine_overhead",
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {
            "slurm": slurm_version(),
            "ray": version("ray"),
            "torch": version("torch"),
            "python": platform.python_version(),
        },
        "targets": {
            "slurm_submit_to_running_s": "< 2",
            "ray_submit_to_running_s": "< 5",
            "gang_back_after_rank_kill_s": "< 30",
            "throughput_ratio_vs_engine_launcher": ">= 0.98",
        },
        "settings": {
            "ranks": RANKS,
            "shape": "2 replicas x 2 devices, processes: per-device, placement: spread",
            "trials": args.trials,
            "gang_trials": args.gang_trials,
            "throughput_runs": args.runs,
            "steps": args.steps,
            "server_tick_s": args.tick,
            "restart_backoff_s": args.restart_backoff,
            "stop_grace_s": args.stop_grace,
            "killed_rank": 2,
        },
    }
    for name in engines:
        say(f"== {name} ==")
        try:
            report[name] = measure(name, args)
        except Exception as exc:  # one engine failing should not hide the others
            say(f"{name}: FAILED: {exc}")
            report[name] = {"error": str(exc)[-2000:]}
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
