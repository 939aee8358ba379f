"""The Ray executor under the contract suite: the local Ray cluster of scripts/local-cluster.sh
(h0 in rack r0, w1 and w2 in rack r1, 8 fake H100 each), started once per session in its own
network namespace and directory, with its adapter, and stopped at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from engines import EngineUnderTest
from suan.exec.ray import RayExecutor, RaySettings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local-cluster.sh"


def start(workdir: Path) -> EngineUnderTest | str:
    if os.geteuid() != 0:
        return "the local Ray cluster runs in a network namespace, which needs root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) to make the network namespace"
    # Ray's socket paths must stay short (AF_UNIX: 107 bytes), so not under pytest's tmp dir.
    cluster = Path(f"/tmp/suan-ray-{os.getpid()}")
    env = {
        **os.environ,
        "SUAN_CLUSTER_DIR": str(cluster),
        "SUAN_RAY_NETNS": f"suanray{os.getpid()}",
    }
    began = time.monotonic()
    done = subprocess.run(
        ["bash", str(SCRIPT), "ray", "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        stop_cluster(env, cluster)
        raise RuntimeError(f"local Ray cluster did not start:\n{done.stdout}\n{done.stderr}")
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith("export ")
    )
    settings = RaySettings(
        socket=Path(exported["SUAN_RAY_SOCKET"]),
        address=exported["SUAN_RAY_ADDRESS"],
        adapter_prefix=("ip", "netns", "exec", exported["SUAN_RAY_NETNS"]),
        auth_token_file=exported.get("SUAN_RAY_TOKEN_FILE"),
    )
    return EngineUnderTest(
        "ray",
        lambda home: RayExecutor(home, settings),
        ("w1", "w2"),
        stop=lambda: stop_cluster(env, cluster),
        extra={
            "cluster": cluster,
            "env": env,
            "settings": settings,
            "script": SCRIPT,
            "start_s": time.monotonic() - began,
        },
    )


def stop_cluster(env: dict[str, str], cluster: Path) -> None:
    subprocess.run(["bash", str(SCRIPT), "ray", "stop"], env=env, timeout=180, check=False)
    shutil.rmtree(cluster, ignore_errors=True)
