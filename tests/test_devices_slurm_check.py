"""`suan devices check --slurm-drain` against the session's local Slurm cluster
(scripts/local-cluster.sh, started once for the whole run): a drain verdict drains the node
in Slurm with `suan: <findings>`, Suan's Slurm inventory then sees it cordoned with that
reason and asks for a drain, a healthy node is left alone, and a node an admin drained keeps
the admin's reason. The node is resumed after each test."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from devices_helpers import a10g_with, printing
from test_devices_discover import ASCEND_910B2C

from suan.cluster.model import NodeHealth
from suan.devices.watch import HEALTH_LABEL

NODE = "n4"
ECC_LINE = "drain: device 0 (NVIDIA A10G) ecc_uncorrectable: volatile uncorrectable ECC errors: 2"


@pytest.fixture
def slurm_env(slurm_engine):
    env = {**slurm_engine.extra["env"]}
    env["SLURM_CONF"] = str(slurm_engine.extra["cluster"] / "slurm.conf")
    yield env
    subprocess.run(
        ["scontrol", "update", f"NodeName={NODE}", "State=RESUME"],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip


def check(env: dict[str, str], bin_dir, *args: str) -> subprocess.CompletedProcess:
    tools_first = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "suan.cli.main", "devices", "check", *args],
        env=tools_first, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def slurm_record(env: dict[str, str], node: str) -> dict:
    done = subprocess.run(
        ["sinfo", "--json"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return next(r for r in json.loads(done.stdout)["nodes"] if r["name"] == node)


def drained(record: dict) -> bool:
    state = record.get("state")
    words = [*(state if isinstance(state, list) else [state]), *record.get("state_flags", [])]
    return any(str(word).upper().startswith("DRAIN") for word in words)


def test_a_drain_verdict_drains_the_node_in_slurm_and_suan_sees_why(
    slurm_engine, slurm_env, tmp_path
):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    done = check(slurm_env, bin_dir, "--slurm-drain", "--node", NODE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == f"{ECC_LINE} | slurm: drained {NODE}\n"
    record = slurm_record(slurm_env, NODE)
    assert drained(record) and record["reason"] == f"suan: {ECC_LINE}"
    # Suan's Slurm engine sees the node cordoned with the reason, labelled for a drain.
    executor = slurm_engine.make_executor(tmp_path / "home")
    node = next(n for n in executor.inventory() if n.name == NODE)
    assert node.health is NodeHealth.CORDONED
    assert node.health_reason.endswith(f": suan: {ECC_LINE}")
    assert node.labels[HEALTH_LABEL] == "drain"
    again = check(slurm_env, bin_dir, "--slurm-drain", "--node", NODE)
    assert again.stdout == f"{ECC_LINE} | slurm: {NODE} already drained with this reason\n"


def test_a_healthy_node_is_left_alone(slurm_env, tmp_path):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "npu-smi", ASCEND_910B2C.read_text())
    done = check(slurm_env, bin_dir, "--slurm-drain", "--node", NODE)
    assert (done.returncode, done.stdout) == (0, "ok: npu-smi: 2 x Ascend-910B\n")
    assert not drained(slurm_record(slurm_env, NODE))


def test_a_node_an_admin_drained_keeps_the_admins_reason(slurm_env, tmp_path):
    subprocess.run(
        ["scontrol", "update", f"NodeName={NODE}", "State=DRAIN", "Reason=PSU swap"],
        env=slurm_env, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    done = check(slurm_env, bin_dir, "--slurm-drain", "--node", NODE)
    assert done.returncode == 1
    assert done.stdout.startswith(f"{ECC_LINE} | slurm: {NODE} already out (")
    assert done.stdout.endswith(": PSU swap); left as it is\n")
    assert slurm_record(slurm_env, NODE)["reason"] == "PSU swap"
