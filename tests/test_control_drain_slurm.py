"""Slurm's word on a node reaches the scheduler through a real `suan server` on the local Slurm
cluster (scripts/local-cluster.sh): `scontrol update state=drain` cordons the node in Suan
with Slurm's reason, `state=resume` makes it ready again, and a drain in Suan stays Suan's
(Slurm's state of the node is left as it is, docs/health.md)."""

from __future__ import annotations

import subprocess

import pytest
from control_helpers import Server, job_yaml, wait_for


@pytest.fixture
def slurm_server(slurm_engine, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, config=slurm_engine.extra["cluster"] / "suan.yaml")
    server.start(timeout=90)
    yield server
    server.stop()


def _scontrol(engine, *args: str) -> str:
    env = {**engine.extra["env"], "SLURM_CONF": str(engine.extra["cluster"] / "slurm.conf")}
    done = subprocess.run(["scontrol", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def _node(client, name: str) -> dict:
    return next(node for node in client.nodes() if node["name"] == name)


def test_a_slurm_drain_cordons_the_node_with_slurms_reason_and_resume_restores_it(
    slurm_engine, slurm_server
):
    client = slurm_server.client()
    _scontrol(slurm_engine, "update", "nodename=n3", "state=drain", "reason=suan test: fan fault")
    try:
        shown = wait_for(lambda: (n := _node(client, "n3"))["health"] == "cordoned" and n,
                         timeout=60, what="n3 cordoned")
        assert shown["engine_health"] == "cordoned" and shown["operator"] is None
        assert shown["health_reason"].startswith("slurm: ")
        assert shown["health_reason"].endswith("suan test: fan fault")
        [job_id] = client.submit(job_yaml("everywhere", ranks=4, devices=8, steps=1))
        waiting = wait_for(lambda: "n3" in (j := client.describe(job_id))["reason"] and j,
                           timeout=60, what="a reason naming n3")
        assert waiting["state"] == "pending"
    finally:
        _scontrol(slurm_engine, "update", "nodename=n3", "state=resume")
    wait_for(lambda: _node(client, "n3")["health"] == "ready", timeout=60, what="n3 ready")
    client.cancel(job_id)


def test_a_drain_in_suan_leaves_slurms_state_of_the_node_alone(slurm_engine, slurm_server):
    client = slurm_server.client()
    client.drain("n4", "PSU swap", grace="10m")
    try:
        shown = _node(client, "n4")
        assert shown["health"] == "cordoned" and shown["engine_health"] == "ready"
        assert shown["health_reason"] == "drained by admin: PSU swap"
        state = _scontrol(slurm_engine, "show", "node", "n4")
        assert "DRAIN" not in state.split("State=")[1].split()[0], state
    finally:
        client.uncordon("n4")
