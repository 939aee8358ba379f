"""One contract, every engine: the same rank programs and the same expected states on the
local executor, a real local Slurm cluster, and the others listed in tests/engines.

Each launch gives its ranks' program twice: as Python code for the engines that run commands,
and as a script (`suan.exec.scripted.RankScript`) for the scripted engine, which runs none.

Each engine is started once per test session (tests/conftest.py); a job id is new per test.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from pathlib import Path

import pytest
from engines import SELECTED
from engines.scripted import SCRIPTS

from suan.catalog import default_catalog
from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import EngineError, Executor, JobLaunch, JobStatus, OsIdentity
from suan.exec.scripted import RankScript, Script

H100 = default_catalog().get("H100").name
ENV_KEYS = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "SUAN_JOB_ID",
    "SUAN_RESTART_COUNT",
    "SUAN_COLLECTIVE_BACKEND",
    "CUDA_VISIBLE_DEVICES",
)


@pytest.fixture(params=SELECTED)
def engine(request, engines_started):
    return engines_started(request.param)


@pytest.fixture
def home(engine, tmp_path_factory):
    return tmp_path_factory.mktemp(f"home-{engine.name}")


def job(command: str, script: Script, attempt: int = 1) -> JobLaunch:
    """A launch whose ranks run `command` (Python code), or follow `script` on the scripted
    engine."""
    name = f"c{uuid.uuid4().hex[:10]}"
    SCRIPTS[name] = script
    return JobLaunch(name, attempt, (sys.executable, "-c", command), accelerator=H100)


def needs_processes(engine) -> None:
    if not engine.runs_commands:
        pytest.skip(f"the {engine.name} engine runs no processes")


def two_nodes(engine, devices_per_rank: int = 1) -> tuple[ReplicaPlacement, ...]:
    first, second = engine.nodes[:2]
    size = devices_per_rank
    return (
        ReplicaPlacement(0, first, tuple(range(size))),
        ReplicaPlacement(0, second, tuple(range(size, 2 * size))),
    )


def until(executor: Executor, job_id: str, done, timeout: float = 60.0) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = executor.poll().get(job_id)
        if status is not None and done(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"{job_id}: condition not reached in {timeout}s; last {status}")


def exited(status: JobStatus) -> bool:
    return status.all_exited


def test_inventory_names_nodes_through_the_catalog(engine, home):
    nodes = engine.make_executor(home).inventory()
    names = {node.name for node in nodes}
    assert set(engine.nodes) <= names
    for node in nodes:
        assert node.labels.get("engine") == engine.name
        if node.accelerator is not None:
            assert default_catalog().find(node.accelerator) is not None
            assert node.devices > 0 and sum(len(d) for d in node.domains) == node.devices


def test_each_rank_reports_its_own_exit_code(engine, home):
    executor = engine.make_executor(home)
    # rank 1 fails after rank 0 has finished: engines that end a step on the first failure
    # (Slurm's --kill-on-bad-exit) would otherwise kill rank 0 first
    launch = job(
        "import os, sys, time; r = int(os.environ['RANK']); time.sleep(r); sys.exit(r * 7)",
        lambda _, rank, env: RankScript(rank, rank * 7),
    )
    handles = executor.launch(launch, two_nodes(engine))
    assert [h.rank for h in handles] == [0, 1]
    status = until(executor, launch.job_id, exited)
    assert [r.exit_code for r in status.ranks] == [0, 7]
    assert status.first_failure is not None and status.first_failure.rank == 1


def test_ranks_get_torchrun_vendor_and_suan_variables(engine, home):
    executor = engine.make_executor(home)
    keys = json.dumps(ENV_KEYS)
    launch = job(
        f"import os, json; print('ENV', json.dumps({{k: os.environ.get(k) for k in {keys}}}))",
        lambda _, rank, env: RankScript(
            0, output=f"ENV {json.dumps({k: env.get(k) for k in ENV_KEYS})}\n".encode()
        ),
    )
    placement = two_nodes(engine, devices_per_rank=2)
    executor.launch(launch, placement)
    status = until(executor, launch.job_id, exited)
    assert all(r.exit_code == 0 for r in status.ranks)
    seen = []
    for rank in (0, 1):
        text = executor.logs(launch.job_id, rank)[0].decode()
        seen.append(json.loads(text.split("ENV ", 1)[1].splitlines()[0]))
    assert [env["RANK"] for env in seen] == ["0", "1"]
    assert {env["WORLD_SIZE"] for env in seen} == {"2"}
    assert {env["SUAN_JOB_ID"] for env in seen} == {launch.job_id}
    assert len({(env["MASTER_ADDR"], env["MASTER_PORT"]) for env in seen}) == 1
    for env, replica, status_rank in zip(seen, placement, status.ranks, strict=True):
        visible = env["CUDA_VISIBLE_DEVICES"].split(",")
        assert len(visible) == len(replica.devices)
        if status_rank.devices is not None:  # the engine chose the ids: they are reported
            assert len(status_rank.devices) == len(replica.devices)
    if engine.nodes[0] != engine.nodes[1]:
        assert [env["NODE_RANK"] for env in seen] == ["0", "1"]


def test_stop_ends_ranks_that_ignore_sigterm(engine, home):
    executor = engine.make_executor(home)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    launch = job(stubborn, lambda *_: RankScript(120, output=b"ready\n", ignores_sigterm=True))
    executor.launch(launch, two_nodes(engine))
    deadline = time.monotonic() + 60
    while not all(b"ready" in executor.logs(launch.job_id, r)[0] for r in (0, 1)):
        assert time.monotonic() < deadline, "ranks did not get ready"
        executor.poll()
        time.sleep(0.1)
    executor.stop(launch.job_id, grace_s=1.0)
    status = until(executor, launch.job_id, exited, timeout=60)
    assert status.stopping
    assert not any(r.succeeded for r in status.ranks)


def test_a_new_executor_finds_and_adopts_a_launch(engine, home):
    first = engine.make_executor(home)
    launch = job("import time; time.sleep(3)", lambda *_: RankScript(3))
    handles = first.launch(launch, two_nodes(engine))
    second = engine.make_executor(home)
    found = second.discover(launch.job_id, launch.attempt)
    assert [(h.rank, h.node, h.engine_id) for h in found] == [
        (h.rank, h.node, h.engine_id) for h in handles
    ]
    second.adopt(found)
    status = until(second, launch.job_id, exited)
    assert [r.exit_code for r in status.ranks] == [0, 0]
    assert second.discover(launch.job_id, launch.attempt + 1) == []


def test_logs_are_read_from_an_offset(engine, home):
    executor = engine.make_executor(home)
    launch = job(
        "print('hello from', __import__('os').environ['RANK'])",
        lambda _, rank, env: RankScript(0, output=f"hello from {env['RANK']}\n".encode()),
    )
    executor.launch(launch, two_nodes(engine))
    until(executor, launch.job_id, exited)
    data, end = executor.logs(launch.job_id, 1)
    assert b"hello from 1" in data
    rest, after = executor.logs(launch.job_id, 1, end)
    assert rest == b"" and after == end
    tail, _ = executor.logs(launch.job_id, 1, end - 5)
    assert tail == data[-5:]


def test_a_node_the_engine_does_not_know_is_refused(engine, home):
    executor = engine.make_executor(home)
    launch = job("print('never')", lambda *_: RankScript(0, output=b"never\n"))
    with pytest.raises(EngineError, match="no-such-node"):
        executor.launch(launch, (ReplicaPlacement(0, "no-such-node", (0,)),))


def test_replicas_that_run_torchrun_form_one_world(engine, home):
    """Two replicas of two devices, each `torchrun --nproc-per-node=2`: one world of 4."""
    needs_processes(engine)
    executor = engine.make_executor(home)
    probe = str(Path(__file__).with_name("world_probe.py"))
    name = f"c{uuid.uuid4().hex[:10]}"
    command = (sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", probe)
    launch = JobLaunch(name, 1, command, env={"OMP_NUM_THREADS": "1"}, accelerator=H100)
    executor.launch(launch, two_nodes(engine, devices_per_rank=2))
    status = until(executor, name, exited, timeout=120)
    logs = "".join(executor.logs(name, rank)[0].decode() for rank in (0, 1))
    assert [r.exit_code for r in status.ranks] == [0, 0], logs[-2000:]
    # the two workers of a replica share one log, so their lines may interleave
    worlds = sorted(list(found) for found in re.findall(r"WORLD (\d+) (\d+) (\d+)", logs))
    assert worlds == [[str(rank), "4", "10"] for rank in range(4)], logs[-2000:]


def test_ranks_run_as_the_launch_account_and_own_their_files(
    engine, tenant_can_run_python, open_home
):
    needs_processes(engine)
    os_account = tenant_can_run_python
    executor = engine.make_executor(open_home)
    account = OsIdentity(os_account.pw_name, os_account.pw_uid, os_account.pw_gid)
    name = f"c{uuid.uuid4().hex[:10]}"
    checkpoints = open_home / "jobs" / name / "checkpoints"
    probe = (
        "import os; d = os.environ['SUAN_CHECKPOINT_DIR']; "
        "open(os.path.join(d, 'r' + os.environ['RANK']), 'w').write('x'); "
        "print('UID', os.getuid(), os.getgid(), flush=True)"
    )
    launch = JobLaunch(
        name,
        1,
        (sys.executable, "-c", probe),
        checkpoint_dir=str(checkpoints),
        accelerator=H100,
        run_as=account,
        image="",
    )
    executor.launch(launch, two_nodes(engine))
    status = until(executor, name, exited)
    logs = [executor.logs(name, rank)[0].decode() for rank in (0, 1)]
    assert [r.exit_code for r in status.ranks] == [0, 0], logs
    for text in logs:
        assert f"UID {account.uid} {account.gid}" in text, text
    for rank in (0, 1):
        assert (checkpoints / f"r{rank}").stat().st_uid == account.uid
    assert (open_home / "jobs" / name).stat().st_mode & 0o077 == 0
