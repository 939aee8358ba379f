"""Suan on a real Slurm cluster (4 slurmd on this machine, started once per session): the GPT
example as a 4-rank gang spread over the nodes survives a killed rank and a killed slurmd, and
ends with the same final loss as on the local executor."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from control_helpers import Server, wait_for
from gpt_helpers import ROOT, final_loss, gpt_spec, rank_processes, reference_loss

from suan.cluster.model import NodeHealth

pytest.importorskip("torch")


@pytest.fixture
def slurm_server(slurm_engine, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, config=slurm_engine.extra["cluster"] / "suan.yaml")
    server.start(timeout=90)
    yield server
    server.stop()


def test_gpt_on_slurm_survives_a_killed_rank_and_a_killed_slurmd(slurm_engine, slurm_server):
    cluster = slurm_engine.extra["cluster"]
    client = slurm_server.client()
    [job_id] = client.submit(gpt_spec("gpt-slurm", 0.5), workdir=str(ROOT))

    def log() -> str:
        return client.logs(job_id, rank=0)["data"]

    wait_for(lambda: "step   20" in log(), timeout=90, what="step 20 of the first attempt")
    job = client.describe(job_id)
    assert len({r["node"] for r in job["ranks_detail"]}) >= 2, job["ranks_detail"]
    assert all(r["engine_id"] for r in job["ranks_detail"])
    victim = wait_for(lambda: rank_processes(job_id).get(2), what="rank 2's process")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: client.describe(job_id)["restarts"] >= 1, timeout=60, what="a gang restart")
    wait_for(lambda: "restart 1, resuming at step" in log(), timeout=90, what="the resumed gang")
    dead = client.describe(job_id)["ranks_detail"][1]["node"]
    os.kill(int((cluster / f"slurmd-{dead}.bgpid").read_text()), signal.SIGKILL)
    try:
        wait_for(lambda: client.describe(job_id)["restarts"] >= 2, timeout=120, what="restart 2")
        nodes_now = {n["name"]: n for n in client.nodes()}
        assert nodes_now[dead]["health"] == NodeHealth.DOWN, nodes_now[dead]
        assert nodes_now[dead]["health_reason"].startswith("slurm: ")
        done = client.wait(job_id, timeout=240)
        assert done["state"] == "succeeded", log()[-3000:]
        assert dead not in {r["node"] for r in done["ranks_detail"]}
    finally:
        subprocess.run(
            ["bash", str(ROOT / "scripts/cluster/slurm.sh"), "start-node", dead],
            env=slurm_engine.extra["env"],
            check=True,
        )
    assert [e["kind"] for e in done["events"]].count("running") == 3
    assert abs(final_loss(log()) - reference_loss()) < 1e-5
