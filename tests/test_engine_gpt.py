"""The main job on every multi-node engine, for real: the GPT example as a 4-rank gang spread
over the engine's nodes (Slurm: 4 slurmd; Ray: a head and 2 raylets), run by `suan server`
over that engine. It survives a killed rank and a killed node daemon (the node is marked down
with the engine's reason and the gang restarts on the others) and ends with the same final
loss as the same training on the local executor."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from control_helpers import Server, wait_for
from gpt_helpers import ROOT, final_loss, gpt_spec, rank_processes, reference_loss

from suan.cluster.model import NodeHealth


@dataclass(frozen=True)
class NodeDaemon:
    """How to kill and bring back one node's daemon on an engine's local cluster."""

    step_seconds: float  # long enough that detection comes before the job ends

    def kill(self, cluster: Path, node: str) -> None:
        raise NotImplementedError

    def restore(self, engine, node: str) -> None:
        raise NotImplementedError


class Slurmd(NodeDaemon):
    def kill(self, cluster: Path, node: str) -> None:
        os.kill(int((cluster / f"slurmd-{node}.bgpid").read_text()), signal.SIGKILL)

    def restore(self, engine, node: str) -> None:
        script = ROOT / "scripts" / "cluster" / "slurm.sh"
        subprocess.run(
            ["bash", str(script), "start-node", node], env=engine.extra["env"], check=True
        )


class Raylet(NodeDaemon):
    def kill(self, cluster: Path, node: str) -> None:
        marker = f"{cluster}/tmp-{node}/".encode()
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"raylet/raylet" in command and marker in command:
                os.kill(int(entry.name), signal.SIGKILL)
                return
        raise AssertionError(f"no raylet of {node}")

    def restore(self, engine, node: str) -> None:
        script = engine.extra["script"]
        subprocess.run(
            ["bash", str(script), "ray", "start"],
            env=engine.extra["env"],
            capture_output=True,
            timeout=180,
            check=True,
        )


DAEMONS = {"slurm": Slurmd(0.5), "ray": Raylet(0.3)}


@pytest.fixture(params=sorted(DAEMONS))
def engine(request, engines_started):
    return engines_started(request.param)


@pytest.fixture
def engine_server(engine, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, config=engine.extra["cluster"] / "suan.yaml")
    server.start(timeout=90)
    yield server
    server.stop()


def test_gpt_survives_a_killed_rank_and_a_killed_node_daemon(engine, engine_server):
    daemon = DAEMONS[engine.name]
    client = engine_server.client()
    [job_id] = client.submit(gpt_spec(f"gpt-{engine.name}", daemon.step_seconds), workdir=str(ROOT))

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
    dead = next(node for node in nodes if node != "h0")  # never the Ray head
    daemon.kill(engine.extra["cluster"], dead)
    try:
        wait_for(lambda: client.describe(job_id)["restarts"] >= 2, timeout=120, what="restart 2")
        down = wait_for(
            lambda: next(
                (n for n in client.nodes() if n["name"] == dead and n["health"] == NodeHealth.DOWN),
                None,
            ),
            timeout=60,
            what=f"{dead} reported down",
        )
        assert down["health_reason"].startswith(f"{engine.name}: ")
        done = client.wait(job_id, timeout=240)
        assert done["state"] == "succeeded", log()[-3000:]
        assert dead not in {r["node"] for r in done["ranks_detail"]}
    finally:
        daemon.restore(engine, dead)
    # A restart inside the engine's detection time may land on the dying node once more.
    assert [e["kind"] for e in done["events"]].count("running") >= 3
    assert abs(final_loss(log()) - reference_loss()) < 1e-5
