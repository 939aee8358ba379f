"""Suan on a real Slurm cluster (4 slurmd on this machine, started once per session): the GPT
example as a 4-rank gang spread over the nodes survives a killed rank and a killed slurmd, and
ends with the same final loss as on the local executor; drained nodes are not placed on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from control_helpers import Server, wait_for

from suan.cluster.model import NodeHealth
from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import JobLaunch
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node

pytest.importorskip("torch")

ROOT = Path(__file__).parents[1]
STEPS = 60
GPT = f"""\
apiVersion: suan.ai/v1
kind: Job
metadata: {{name: gpt-slurm}}
spec:
  replicas: 4
  accelerators: {{count: 1, type: H100}}
  topology: {{placement: spread}}
  command: [python, examples/gpt/train.py, --steps, "{STEPS}", --checkpoint-every, "10",
            --step-seconds, "0.5"]
  env: {{OMP_NUM_THREADS: "1"}}
  restartPolicy: on-failure
  maxRestarts: 3
"""


def final_loss(text: str) -> float:
    return float(re.findall(r"final loss ([0-9.]+)", text)[-1])


def reference_loss(home: Path) -> float:
    """The same training on the local executor, uninterrupted."""
    node, _ = local_node("8xH100")
    executor = LocalExecutor(home, node=node)
    command = ("python", "examples/gpt/train.py", "--steps", str(STEPS), "--checkpoint-every", "10")
    launch = JobLaunch(
        "reference",
        1,
        command,
        env={"OMP_NUM_THREADS": "1"},
        checkpoint_dir=str(home / "ckpt"),
        workdir=str(ROOT),
    )
    executor.launch(launch, tuple(ReplicaPlacement(0, node.name, (i,)) for i in range(4)))
    deadline = time.monotonic() + 120
    while not executor.poll()["reference"].all_exited:
        assert time.monotonic() < deadline, "the reference run did not finish"
        time.sleep(0.2)
    assert [r.exit_code for r in executor.poll()["reference"].ranks] == [0, 0, 0, 0]
    return final_loss(executor.logs("reference", 0)[0].decode())


def rank_processes(job_id: str) -> dict[int, int]:
    """RANK -> pid of the training processes of `job_id` on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
        mine = env.get(b"SUAN_JOB_ID") == job_id.encode() and b"train.py" in cmdline
        if mine and b"_shim.py" not in cmdline and b"_rank.py" not in cmdline:
            found[int(env[b"RANK"])] = int(entry.name)
    return found


@pytest.fixture
def slurm_server(slurm_engine, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, config=slurm_engine.extra["cluster"] / "suan.yaml")
    server.start(timeout=90)
    yield server
    server.stop()


def test_gpt_on_slurm_survives_a_killed_rank_and_a_killed_slurmd(
    slurm_engine, slurm_server, tmp_path
):
    cluster = slurm_engine.extra["cluster"]
    client = slurm_server.client()
    [job_id] = client.submit(GPT, workdir=str(ROOT))

    def log() -> str:
        return client.logs(job_id, rank=0)["data"]

    wait_for(lambda: "step   20" in log(), timeout=90, what="step 20 of the first attempt")
    job = client.describe(job_id)
    nodes = {r["node"] for r in job["ranks_detail"]}
    assert len(nodes) >= 2, job["ranks_detail"]
    assert all(r["engine_id"] for r in job["ranks_detail"])
    victim = wait_for(lambda: rank_processes(job_id).get(2), what="rank 2's process")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: client.describe(job_id)["restarts"] >= 1, timeout=60, what="a gang restart")
    wait_for(lambda: "restart 1, resuming at step" in log(), timeout=90, what="the resumed gang")
    resumed = client.describe(job_id)
    dead = resumed["ranks_detail"][1]["node"]
    pid_file = cluster / f"slurmd-{dead}.bgpid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    try:
        wait_for(lambda: client.describe(job_id)["restarts"] >= 2, timeout=120, what="restart 2")
        nodes_now = {n["name"]: n for n in client.nodes()}
        assert nodes_now[dead]["health"] == NodeHealth.DOWN, nodes_now[dead]
        assert "slurm" in nodes_now[dead]["health_reason"]
        done = client.wait(job_id, timeout=240)
        assert done["state"] == "succeeded", log()[-3000:]
        assert dead not in {r["node"] for r in done["ranks_detail"]}
    finally:
        subprocess.run(
            ["bash", str(ROOT / "scripts/cluster/slurm.sh"), "start-node", dead],
            env=slurm_engine.extra["env"],
            check=True,
        )
    events = [e["kind"] for e in done["events"]]
    assert events.count("running") == 3, events
    assert abs(final_loss(log()) - reference_loss(tmp_path / "ref")) < 1e-5
