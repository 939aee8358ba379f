"""A real server on the local engine with device health on: an `nvidia-smi` on the server's
PATH that reports a GPU with uncorrectable ECC errors makes `suan nodes` show the node
cordoned with the GPU named; the server and the API never wait for the tool."""

from __future__ import annotations

import json
import os
import time

import pytest
from control_helpers import free_port, kill_ranks, suan
from devices_helpers import a10g_with, printing


@pytest.fixture
def home_env(tmp_path):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    env = {k: v for k, v in os.environ.items() if k not in ("SUAN_TOKEN", "SUAN_SERVER")}
    env["SUAN_HOME"] = str(tmp_path / "home")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    yield env
    suan("down", env=env, check=False)
    kill_ranks(tmp_path / "home")


def test_suan_nodes_shows_the_node_cordoned_with_the_gpu_and_the_tools_words(home_env, tmp_path):
    config = tmp_path / "server.yaml"
    config.write_text(
        "engine: local\n"
        "inventorySeconds: 0.2\n"
        "local:\n"
        "  devices: 2xH100\n"
        "  health: {enabled: 'on', periodSeconds: 0.5, timeoutSeconds: 2}\n"
    )
    suan("up", "--port", str(free_port()), "--config", str(config), env=home_env)
    deadline = time.monotonic() + 30
    while True:
        (node,) = json.loads(suan("nodes", "--json", env=home_env).stdout)
        if node["operator"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    words = "drain: device 0 (NVIDIA A10G) ecc_uncorrectable: volatile uncorrectable ECC errors: 2"
    assert node["health"] == "cordoned"
    assert node["engine_reason"] == words
    # A `drain` severity drains the node (nothing runs on it, so it is drained at once).
    assert node["health_reason"] == f"drained by device health: {words}"
    assert node["operator"]["action"] == "drain" and node["operator"]["by"] == "device health"
    table = suan("nodes", env={**home_env, "COLUMNS": "300"}).stdout
    assert "cordoned" in table and "ecc_uncorrectable" in table
