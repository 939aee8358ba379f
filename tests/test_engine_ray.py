"""Suan on a real Ray cluster (a head and two workers in a network namespace, started once per
session): the GPT example as a 4-rank gang spread over the nodes survives a killed rank and a
killed raylet, and ends with the same final loss as on the local executor."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from control_helpers import Server, wait_for
from gpt_helpers import ROOT, final_loss, gpt_spec, rank_processes, reference_loss

from suan.cluster.model import NodeHealth

pytest.importorskip("torch")


@pytest.fixture
def ray_engine(engines_started):
    engine = engines_started("ray")
    if isinstance(engine, str):
        pytest.skip(engine)
    return engine


@pytest.fixture
def ray_server(ray_engine, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, config=ray_engine.extra["cluster"] / "suan.yaml")
    server.start(timeout=90)
    yield server
    server.stop()


def raylet_pid(temp_dir: str) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"raylet/raylet" in command and f"{temp_dir}/".encode() in command:
                return int(entry)
    raise AssertionError(f"no raylet under {temp_dir}")


def test_gpt_on_ray_survives_a_killed_rank_and_a_killed_raylet(ray_engine, ray_server):
    cluster = ray_engine.extra["cluster"]
    client = ray_server.client()
    [job_id] = client.submit(gpt_spec("gpt-ray", 0.3), workdir=str(ROOT))

    def log() -> str:
        return client.logs(job_id, rank=0)["data"]

    wait_for(lambda: "step   20" in log(), timeout=120, what="step 20 of the first attempt")
    job = client.describe(job_id)
    assert len({r["node"] for r in job["ranks_detail"]}) >= 2, job["ranks_detail"]
    assert all(r["engine_id"] for r in job["ranks_detail"])
    victim = wait_for(lambda: rank_processes(job_id).get(2), what="rank 2's process")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: client.describe(job_id)["restarts"] >= 1, timeout=60, what="a gang restart")
    wait_for(lambda: "restart 1, resuming at step" in log(), timeout=120, what="the resumed gang")
    nodes = [r["node"] for r in client.describe(job_id)["ranks_detail"]]
    dead = next(node for node in nodes if node != "h0")
    os.kill(raylet_pid(f"{cluster}/tmp-{dead}"), signal.SIGKILL)
    try:
        wait_for(lambda: client.describe(job_id)["restarts"] >= 2, timeout=120, what="restart 2")
        nodes_now = {n["name"]: n for n in client.nodes()}
        assert nodes_now[dead]["health"] == NodeHealth.DOWN, nodes_now[dead]
        assert nodes_now[dead]["health_reason"].startswith("ray: ")
        done = client.wait(job_id, timeout=240)
        assert done["state"] == "succeeded", log()[-3000:]
        assert dead not in {r["node"] for r in done["ranks_detail"]}
    finally:
        subprocess.run(
            ["bash", str(ray_engine.extra["script"]), "ray", "start"],
            env=ray_engine.extra["env"],
            capture_output=True,
            timeout=180,
            check=True,
        )
    assert [e["kind"] for e in done["events"]].count("running") == 3
    assert abs(final_loss(log()) - reference_loss()) < 1e-5
