"""Ray-specific behaviour of the Ray executor, on the real local Ray cluster (tests/engines/ray.py,
started once per session and shared with the contract suite): inventory from labels, rank env
without Ray's address, a killed rank or actor seen as a failure, a launch a crash cut short,
and a dead node reported down with Ray's reason. Ray's own mapping is checked without a cluster.

Skipped when SUAN_TEST_ENGINES is set and does not name `ray`. Timings go to stdout (`-s`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from suan.catalog import default_catalog
from suan.cluster.model import NodeHealth
from suan.cluster.snapshot import ReplicaPlacement
from suan.errors import SpecError
from suan.exec import JobLaunch, JobStatus, launch_name
from suan.exec.engines import open_executor
from suan.exec.ray import RayExecutor, RaySettings
from suan.exec.ray_inventory import RayInventoryRules, ray_nodes

H100 = default_catalog().get("H100").name
SELECTED = os.environ.get("SUAN_TEST_ENGINES")
needs_cluster = pytest.mark.skipif(
    SELECTED is not None and "ray" not in SELECTED.split(","),
    reason="SUAN_TEST_ENGINES does not name ray",
)


# -- the mapping, without a cluster ------------------------------------------------------------
def record(name: str, alive: bool = True, **resources: float) -> dict:
    return {
        "NodeID": f"id-{name}-{alive}",
        "Alive": alive,
        "Resources": {"CPU": 4.0, "memory": 2.0 * 2**30, **resources},
        "Labels": {"suan/node": name, "suan/rack": "r9"},
        "DeathReason": 0 if alive else 1,
        "DeathReasonMessage": "" if alive else "health check failed due to missing too many",
        "NodeManagerAddress": "10.0.0.1",
        "NodeManagerHostname": "host",
    }


def test_inventory_maps_accelerators_racks_and_death():
    accel = {"accel:H100": 8.0, "GPU": 8.0}
    records = [
        record("a", True, **accel),
        record("b", False, **accel),
        record("b", True, **accel),  # b restarted: the alive record wins
        record("c", False, **accel),
        record("d", True, GPU=4.0, **{"accelerator_type:A100": 1.0}),
        record("e", True, **{"accel:NoSuchChip": 8.0}),
        record("f", True),
    ]
    nodes = {n.name: n for n in ray_nodes(records, RayInventoryRules(), default_catalog())}
    assert sorted(nodes) == ["a", "b", "c", "d", "e", "f"]
    assert nodes["a"].accelerator == H100 and nodes["a"].devices == 8 and nodes["a"].rack == "r9"
    assert nodes["a"].labels["ray.resource"] == "accel:H100" and nodes["a"].labels["ray.gpu"] == "1"
    assert nodes["a"].cpu_milli == 4000 and nodes["a"].memory_mib == 2048
    assert nodes["b"].health == NodeHealth.READY
    assert nodes["c"].health == NodeHealth.DOWN
    assert "missing too many" in nodes["c"].health_reason
    assert nodes["c"].health_reason.startswith("ray: node dead (unexpected termination)")
    assert nodes["d"].accelerator == default_catalog().get("A100").name
    assert nodes["d"].labels["ray.resource"] == "GPU" and nodes["d"].devices == 4
    assert nodes["e"].health == NodeHealth.CORDONED and "NoSuchChip" in nodes["e"].health_reason
    assert nodes["e"].accelerator is None and nodes["e"].devices == 0
    assert nodes["f"].accelerator is None and nodes["f"].health == NodeHealth.READY


def test_config_section_builds_settings_and_names_mistakes():
    executor, simulated = open_executor(
        "ray",
        Path("/nonexistent"),
        {"netns": "suanray", "address": "127.0.0.1:26379", "topology": {"rack": "x/rack"}},
    )
    assert isinstance(executor, RayExecutor) and simulated is False
    assert executor.settings.adapter_prefix == ("ip", "netns", "exec", "suanray")
    assert executor.settings.rules.topology_labels == {"rack": "x/rack"}
    with pytest.raises(SpecError, match=r"ray\.defaultType"):
        open_executor("ray", Path("/nonexistent"), {"defaultType": "NoSuchChip"})
    with pytest.raises(SpecError, match=r"ray\.bogus"):
        open_executor("ray", Path("/nonexistent"), {"bogus": 1})


# -- on the cluster ----------------------------------------------------------------------------
@pytest.fixture
def ray_engine(engines_started):
    engine = engines_started("ray")
    if not engine.extra.get("reported"):
        engine.extra["reported"] = True
        print(f"\n[ray] cluster start (once per session): {engine.extra['start_s']:.1f}s")
    return engine


@pytest.fixture
def executor(ray_engine, tmp_path) -> RayExecutor:
    return ray_engine.make_executor(tmp_path / "home")


def job(command: str) -> JobLaunch:
    return JobLaunch(
        f"r{uuid.uuid4().hex[:10]}", 1, (sys.executable, "-c", command), accelerator=H100
    )


def until(executor: RayExecutor, job_id: str, done, timeout: float = 60.0) -> JobStatus:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = executor.poll().get(job_id)
        if status is not None and done(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"{job_id}: condition not reached in {timeout}s; last {status}")


def finish(executor: RayExecutor, job_id: str) -> None:
    executor.stop(job_id, 1.0)
    until(executor, job_id, lambda s: s.all_exited, timeout=30)
    executor.forget(job_id)


def until_up(executor: RayExecutor, job_id: str, ranks: int, timeout: float = 60.0) -> None:
    """Until every rank printed `up` (its program runs under its shim)."""
    deadline = time.monotonic() + timeout
    while not all(b"up" in executor.logs(job_id, rank)[0] for rank in range(ranks)):
        assert time.monotonic() < deadline, f"{job_id}: ranks not up in {timeout}s"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


SLEEPER = "import time; print('up', flush=True); time.sleep(120)"


@needs_cluster
def test_inventory_reads_labels_and_fake_h100s(executor):
    nodes = {n.name: n for n in executor.inventory()}
    assert {"h0", "w1", "w2"} <= set(nodes)
    assert (nodes["h0"].rack, nodes["w1"].rack, nodes["w2"].rack) == ("r0", "r1", "r1")
    for name in ("h0", "w1", "w2"):
        node = nodes[name]
        assert node.health == NodeHealth.READY and node.accelerator == H100
        assert node.devices == 8 and node.labels["engine"] == "ray"
        assert node.labels["ray.resource"] == "accel:H100"


@needs_cluster
def test_ranks_see_no_ray_address_and_run_where_placed(executor, ray_engine):
    launch = job("import os, json; print('ENV', json.dumps({k: v for k, v in os.environ.items()}))")
    placement = (
        ReplicaPlacement(0, "w1", (0, 1)),
        ReplicaPlacement(0, "w2", (0, 1)),
        ReplicaPlacement(0, "w2", (2, 3)),
    )
    began = time.monotonic()
    handles = executor.launch(launch, placement)
    print(f"[ray] submit -> 3 ranks running: {time.monotonic() - began:.2f}s")
    assert {h.engine_id for h in handles} == {launch_name(launch.job_id, 1)}
    status = until(executor, launch.job_id, lambda s: s.all_exited)
    assert [r.exit_code for r in status.ranks] == [0, 0, 0]
    address = ray_engine.extra["settings"].address
    for rank, replica in enumerate(placement):
        text = executor.logs(launch.job_id, rank)[0].decode()
        env = json.loads(text.split("ENV ", 1)[1].splitlines()[0])
        assert not [k for k in env if k.startswith("RAY_")], "a rank sees Ray's variables"
        assert not [k for k, v in env.items() if address in v], "a rank sees the GCS address"
        assert env["SUAN_RAY_NODE"] == replica.node and env["RANK"] == str(rank)
    # both ranks on w2 got distinct GPU ids from Ray, reported as the placement of record
    assert set(status.ranks[1].devices or ()).isdisjoint(status.ranks[2].devices or ())
    executor.forget(launch.job_id)


@needs_cluster
def test_a_killed_rank_is_a_failure_and_the_rest_stop(executor):
    launch = job(SLEEPER)
    handles = executor.launch(
        launch, (ReplicaPlacement(0, "w1", (0,)), ReplicaPlacement(0, "w2", (0,)))
    )
    until_up(executor, launch.job_id, 2)
    command = children(handles[1].pid)  # the shim's child: the rank's program
    assert command, "the rank's program was not found under its shim"
    began = time.monotonic()
    os.kill(command[0], signal.SIGKILL)
    status = until(executor, launch.job_id, lambda s: not s.ranks[1].running, timeout=30)
    print(f"[ray] rank SIGKILL -> failure seen: {time.monotonic() - began:.2f}s")
    assert status.ranks[1].exit_code == 137 and status.ranks[0].running
    assert status.first_failure is not None and status.first_failure.rank == 1
    finish(executor, launch.job_id)


@needs_cluster
def test_a_killed_actor_is_a_vanished_rank_and_takes_its_program_along(executor):
    launch = job(SLEEPER)
    handles = executor.launch(
        launch, (ReplicaPlacement(0, "w1", (0,)), ReplicaPlacement(0, "w1", (1,)))
    )
    until_up(executor, launch.job_id, 2)
    program = children(handles[0].pid)
    actor = int(Path(f"/proc/{handles[0].pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    began = time.monotonic()
    os.kill(actor, signal.SIGKILL)  # the Ray worker process holding rank 0
    status = until(executor, launch.job_id, lambda s: not s.ranks[0].running, timeout=30)
    print(f"[ray] actor SIGKILL -> rank gone seen: {time.monotonic() - began:.2f}s")
    assert status.ranks[0].exit_code is None and status.ranks[1].running
    assert gone(handles[0].pid, 10), "the shim outlived its actor"
    finish(executor, launch.job_id)  # releasing the launch reaps the rank's process group
    assert program and all(gone(pid, 10) for pid in program), "the rank's program lives on"


@needs_cluster
def test_discover_finds_a_launch_and_drops_a_group_without_ranks(executor, ray_engine, tmp_path):
    launch = job(SLEEPER)
    placement = (ReplicaPlacement(0, "w1", (0,)), ReplicaPlacement(0, "w2", (0,)))
    handles = executor.launch(launch, placement)
    restarted = ray_engine.make_executor(tmp_path / "home")  # the server after a crash
    found = restarted.discover(launch.job_id, 1)
    assert [(h.rank, h.node, h.pid, h.engine_id) for h in found] == [
        (h.rank, h.node, h.pid, h.engine_id) for h in handles
    ]
    restarted.adopt(found)
    finish(restarted, launch.job_id)
    assert restarted.discover(launch.job_id, 1) == []  # released: nothing left to find
    # a crash between creating the group and starting its actors: the group alone is dropped
    cut = job(SLEEPER)
    name = launch_name(cut.job_id, cut.attempt)
    bundle = {"CPU": 0.01, "accel:H100": 1.0}
    spec = {"node": "w1", "bundle": bundle, "selector": {"suan/node": "w1"}, "options": {}}
    executor.client.request("launch", name=name, ranks=[spec], pg_only=True)
    assert restarted.discover(cut.job_id, cut.attempt) == []
    assert executor.client.request("find", name=name) is None


@needs_cluster
def test_an_executor_starts_its_own_adapter_and_adopts_through_it(executor, ray_engine, tmp_path):
    """The server and the adapter both gone: a new executor starts an adapter (in the netns)
    on a socket nobody serves, finds the running launch by name and sees it end."""
    launch = job("import time; print('up', flush=True); time.sleep(4)")
    handles = executor.launch(launch, (ReplicaPlacement(0, "w1", (0,)),))
    shared: RaySettings = ray_engine.extra["settings"]
    own = RaySettings(
        socket=tmp_path / "own.sock",
        address=shared.address,
        adapter_prefix=shared.adapter_prefix,
        auth_token_file=shared.auth_token_file,
    )
    fresh = RayExecutor(tmp_path / "home", own)
    began = time.monotonic()
    try:
        found = fresh.discover(launch.job_id, launch.attempt)
        print(f"[ray] executor started its adapter in {time.monotonic() - began:.1f}s")
        assert fresh._adapter is not None and fresh._adapter.poll() is None
        assert [(h.rank, h.pid) for h in found] == [(h.rank, h.pid) for h in handles]
        fresh.adopt(found)
        status = until(fresh, launch.job_id, lambda s: s.all_exited, timeout=60)
        assert [r.exit_code for r in status.ranks] == [0]
        fresh.forget(launch.job_id)
    finally:
        if fresh._adapter is not None:
            fresh._adapter.terminate()
            fresh._adapter.wait(30)
    assert not (tmp_path / "own.sock").exists()


@needs_cluster
def test_a_dead_node_is_down_with_rays_reason_and_its_rank_vanishes(executor, ray_engine):
    """SIGKILL w2's raylet under a live gang; w2 is restarted afterwards for later tests."""
    cluster: Path = ray_engine.extra["cluster"]
    launch = job(SLEEPER)
    executor.launch(launch, (ReplicaPlacement(0, "w1", (0,)), ReplicaPlacement(0, "w2", (0,))))
    until_up(executor, launch.job_id, 2)
    raylet = raylet_pid(cluster / "tmp-w2")
    began = time.monotonic()
    os.kill(raylet, signal.SIGKILL)
    try:
        status = until(executor, launch.job_id, lambda s: not s.ranks[1].running, timeout=45)
        seen_rank = time.monotonic() - began
        assert status.ranks[1].exit_code is None and status.ranks[0].running
        deadline = time.monotonic() + 45
        while True:
            w2 = {n.name: n for n in executor.inventory()}["w2"]
            if w2.health == NodeHealth.DOWN or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        seen_node = time.monotonic() - began
        print(f"[ray] raylet SIGKILL -> rank gone {seen_rank:.2f}s, node DOWN {seen_node:.2f}s")
        assert w2.health == NodeHealth.DOWN
        assert w2.health_reason.startswith("ray: node dead"), w2.health_reason
        assert "heartbeat" in w2.health_reason or "health check" in w2.health_reason
        finish(executor, launch.job_id)
    finally:
        restart_w2(ray_engine)
    w2 = {n.name: n for n in executor.inventory()}["w2"]
    assert w2.health == NodeHealth.READY


def raylet_pid(temp_dir: Path) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "raylet/raylet" in cmd and f"{temp_dir}/" in cmd:
            return int(entry.name)
    raise AssertionError(f"no raylet under {temp_dir}")


def restart_w2(engine) -> None:
    """Wait (bounded) for w2's `ray start --block` to exit, then start the cluster again."""
    pid_file = engine.extra["cluster"] / "pids" / "w2"
    pid = int(pid_file.read_text())
    assert gone(pid, 40), "w2's `ray start` did not exit after its raylet died"
    began = time.monotonic()
    subprocess.run(
        ["bash", str(engine.extra["script"]), "ray", "start"],
        env=engine.extra["env"],
        capture_output=True,
        timeout=180,
        check=True,
    )
    print(f"[ray] w2 back after {time.monotonic() - began:.1f}s")


def test_shipped_code_runs_from_rays_copy_of_the_working_directory(ray_engine, tmp_path):
    """With ship_code, a job's directory reaches the nodes as runtime_env.working_dir."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "hello.py").write_text("import os; print('HELLO from', os.getcwd(), flush=True)\n")
    settings = dataclasses.replace(ray_engine.extra["settings"], ship_code=True)
    executor = RayExecutor(tmp_path / "home", settings)
    launch = JobLaunch(
        f"ship{uuid.uuid4().hex[:6]}", 1, (sys.executable, "hello.py"), workdir=str(code)
    )
    executor.launch(launch, (ReplicaPlacement(0, "w1", ()),))
    status = until(executor, launch.job_id, lambda s: s.all_exited)
    text = executor.logs(launch.job_id, 0)[0].decode()
    assert status.ranks[0].exit_code == 0, text
    where = text.split("HELLO from ", 1)[1].split()[0]
    assert where != str(code) and "working_dir_files" in where, where
    finish(executor, launch.job_id)


RAY_ATTACK = r"""
import json, os, sys
target = json.loads(os.environ["TARGET"])
for path in target["token_files"]:
    try:
        open(path).read()
        print("ATTACK read-token SUCCEEDED", path, flush=True)
    except OSError as exc:
        print("ATTACK read-token blocked", type(exc).__name__, flush=True)
import ray
try:
    ray.init(address=target["address"], namespace="suan", log_to_driver=False)
    ray.kill(ray.get_actor(target["actor"], namespace="suan"))
    print("ATTACK kill-actor SUCCEEDED", flush=True)
except Exception as exc:
    print("ATTACK kill-actor blocked", type(exc).__name__, flush=True)
"""


@needs_cluster
def test_a_rank_cannot_reach_the_gcs_to_kill_another_gangs_actor(
    ray_engine, open_home, tenant_can_run_python
):
    """A rank, run as its tenant's account, knows the GCS address and the victim's actor name,
    but has no token: it cannot connect, so it cannot kill the other gang's actor."""
    from suan.exec import OsIdentity
    from suan.exec.ray_adapter import actor_name

    executor = ray_engine.make_executor(open_home / "home")
    settings = ray_engine.extra["settings"]
    victim = job("print('up', flush=True); import time; time.sleep(60)")
    executor.launch(victim, (ReplicaPlacement(0, "w1", (0,)),))
    until_up(executor, victim.job_id, 1)
    account = tenant_can_run_python
    target = {
        "address": settings.address,
        "actor": actor_name(launch_name(victim.job_id, 1), 0),
        "token_files": [settings.auth_token_file],
    }
    attacker = dataclasses.replace(
        job(RAY_ATTACK),
        env={"TARGET": json.dumps(target), "RAY_ADDRESS": "", "HOME": "/tmp"},
        run_as=OsIdentity(account.pw_name, account.pw_uid, account.pw_gid),
    )
    try:
        executor.launch(attacker, (ReplicaPlacement(0, "w2", (0,)),))
        until(executor, attacker.job_id, lambda s: s.all_exited, timeout=120)
        log = executor.logs(attacker.job_id, 0)[0].decode()
        attacks = [line.split()[1:3] for line in log.splitlines() if line.startswith("ATTACK")]
        assert attacks == [["read-token", "blocked"], ["kill-actor", "blocked"]], log
        assert executor.poll()[victim.job_id].ranks[0].running
    finally:
        finish(executor, victim.job_id)
