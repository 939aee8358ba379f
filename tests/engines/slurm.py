"""The Slurm executor under the contract suite: the 4-node local cluster of
scripts/local-cluster.sh (n1..n4, 8 fake H100 each, partition `suan`), started once."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from engines import EngineUnderTest
from suan.exec.slurm import SlurmExecutor, SlurmSettings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local-cluster.sh"


def start(workdir: Path) -> EngineUnderTest | str:
    if shutil.which("slurmctld") is None and os.geteuid() != 0:
        return "Slurm is not installed and installing it (apt-get) needs root"
    # Outside pytest's 0700 tmp dirs: ranks that run as other accounts read slurm.conf and
    # talk to munge's socket.
    cluster = Path(f"/tmp/suan-slurm-{os.getpid()}")
    env = {**os.environ, "SUAN_CLUSTER_DIR": str(cluster), "SUAN_SLURM_PORT": "36800"}
    for attempt in (1, 2):  # a first start on a busy machine may miss its wait; once more
        done = subprocess.run(
            ["bash", str(SCRIPT), "slurm", "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode == 0:
            break
        logs = "\n".join(
            f"{path.name}: {path.read_text(errors='replace')[-1500:]}"
            for path in sorted((cluster / "log").glob("*.log"))
        ) if (cluster / "log").is_dir() else ""
        subprocess.run(["bash", str(SCRIPT), "slurm", "stop"], env=env, timeout=120)
        if attempt == 2:
            raise RuntimeError(
                f"local Slurm cluster did not start:\n{done.stdout}\n{done.stderr}\n{logs}"
            )
    settings = SlurmSettings(conf=str(cluster / "slurm.conf"), partition="suan", simulated=True)

    def stop() -> None:
        subprocess.run(["bash", str(SCRIPT), "slurm", "stop"], env=env, timeout=120)
        shutil.rmtree(cluster, ignore_errors=True)

    return EngineUnderTest(
        "slurm",
        lambda home: SlurmExecutor(home, settings),
        ("n1", "n2"),
        stop=stop,
        extra={"cluster": cluster, "env": env, "settings": settings},
    )
