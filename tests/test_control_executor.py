"""The local executor's own details (what every engine shares is in
tests/test_executor_contract.py): SIGKILL's exit code, a command that cannot start, and the
environment each rank gets for multi-node and vendor placements."""

from __future__ import annotations

import sys
import time

import pytest
from executor_helpers import until_exited

from suan.cluster.snapshot import ReplicaPlacement
from suan.errors import SpecError
from suan.exec import JobLaunch
from suan.exec.environment import rank_environments
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node, match_gpu_name, parse_devices

NODE, _ = local_node("8xH100")
ON_ONE_NODE = tuple(ReplicaPlacement(0, NODE.name, (device,)) for device in range(2))


def run(command: str, job_id: str = "j", attempt: int = 1) -> JobLaunch:
    return JobLaunch(job_id, attempt, (sys.executable, "-c", command))


def test_stop_sends_sigterm_then_sigkill_to_ranks_that_ignore_it(tmp_path):
    executor = LocalExecutor(tmp_path, node=NODE)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    executor.launch(run(stubborn), ON_ONE_NODE)
    deadline = time.monotonic() + 10
    while not all(b"ready" in executor.logs("j", rank)[0] for rank in (0, 1)):
        assert time.monotonic() < deadline, "ranks did not get ready"
        time.sleep(0.05)
    started = time.monotonic()
    executor.stop("j", grace_s=0.5)
    status = until_exited(executor, "j")
    assert time.monotonic() - started >= 0.5
    assert status.stopping and [r.exit_code for r in status.ranks] == [137, 137]


def test_a_command_that_cannot_start_exits_127(tmp_path):
    executor = LocalExecutor(tmp_path, node=NODE)
    executor.launch(JobLaunch("j", 1, ("/no/such/binary",)), ON_ONE_NODE[:1])
    assert until_exited(executor, "j").ranks[0].exit_code == 127
    assert b"cannot start" in executor.logs("j", 0)[0]


def test_environment_across_nodes_and_vendors():
    placement = (
        ReplicaPlacement(0, "a", (0, 1)),
        ReplicaPlacement(0, "b", (4, 5)),
        ReplicaPlacement(0, "a", (2, 3)),
    )
    job = JobLaunch(
        "j-1",
        3,
        ("train",),
        env={"RANK": "99", "X": "1"},
        checkpoint_dir="/ckpt",
        restart_count=2,
        accelerator="Ascend-910B",
        simulated=False,
    )
    envs = rank_environments(job, placement, "10.0.0.1", 29500, base={})
    assert [e["RANK"] for e in envs] == ["0", "1", "2"], "Suan's variables win over the spec's"
    assert [e["NODE_RANK"] for e in envs] == ["0", "1", "0"]
    assert [e["LOCAL_RANK"] for e in envs] == ["0", "0", "1"]
    assert [e["LOCAL_WORLD_SIZE"] for e in envs] == ["2", "1", "2"]
    assert [e["ASCEND_RT_VISIBLE_DEVICES"] for e in envs] == ["0,1", "4,5", "2,3"]
    assert {e["SUAN_COLLECTIVE_BACKEND"] for e in envs} == {"hccl"}
    assert {e["SUAN_RESTART_COUNT"] for e in envs} == {"2"}
    assert {e["X"] for e in envs} == {"1"}


def test_a_rank_without_devices_sees_none_and_uses_gloo():
    job = JobLaunch("cpu-1", 1, ("prep",), accelerator="H100-SXM-80GB", simulated=False)
    [env] = rank_environments(job, (ReplicaPlacement(0, "a", ()),), "127.0.0.1", 1, base={})
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["SUAN_COLLECTIVE_BACKEND"] == "gloo"
    [env] = rank_environments(job, (ReplicaPlacement(0, "a", (3,)),), "127.0.0.1", 1, base={})
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["SUAN_COLLECTIVE_BACKEND"] == "nccl"


def test_local_node_from_devices_option():
    node, simulated = local_node("4xH100")
    assert simulated and node.accelerator == "H100-SXM-80GB" and node.devices == 4
    assert parse_devices("910B")[0] == "Ascend-910B"
    assert parse_devices("none") == (None, 0)
    with pytest.raises(SpecError):
        parse_devices("8xNotAGpu")
    assert match_gpu_name("NVIDIA H100 80GB HBM3") == "H100-SXM-80GB"
