"""The start-up check that every node sees the server's home (jobs' files, checkpoints).

Engines that run ranks on other machines read `launch.json` and write logs, exit codes and
checkpoints under the server's home, so that path must be the same shared storage on every
node. `check_shared_storage` launches one device-less rank on every ready node; each writes
its hostname into a probe directory under home. A node whose rank wrote nothing there does not
see the server's home, and the server refuses to start, naming the nodes.
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from pathlib import Path

from suan.cluster.model import Cluster
from suan.cluster.snapshot import ReplicaPlacement
from suan.errors import SuanError
from suan.exec import EngineError, Executor, JobLaunch

PROBE = (
    "import os, socket, sys; d = sys.argv[1]; "
    "open(os.path.join(d, 'rank-' + os.environ['RANK']), 'w').write(socket.gethostname())"
)


def check_shared_storage(
    executor: Executor, cluster: Cluster, home: Path, timeout_s: float = 60.0
) -> list[str]:
    """Probe every ready node; return the nodes that saw home. Raises SuanError naming the
    nodes that did not (or the engine's error when the probe could not run)."""
    nodes = [node.name for node in cluster if node.health.schedulable]
    if not nodes:
        return []
    job_id = f"probe-{uuid.uuid4().hex[:8]}"
    probe_dir = Path(home) / "probe" / job_id
    probe_dir.mkdir(parents=True)
    launch = JobLaunch(job_id, 1, (sys.executable, "-c", PROBE, str(probe_dir)), simulated=True)
    placement = tuple(ReplicaPlacement(0, node, ()) for node in nodes)
    try:
        executor.launch(launch, placement)
        _wait(executor, job_id, timeout_s)
    except EngineError as exc:
        engine = executor.engine
        raise SuanError(f"the storage probe could not run on the {engine} engine: {exc}") from None
    finally:
        executor.forget(job_id)
    blind = [node for rank, node in enumerate(nodes) if not (probe_dir / f"rank-{rank}").exists()]
    shutil.rmtree(probe_dir, ignore_errors=True)
    shutil.rmtree(Path(home) / "jobs" / job_id, ignore_errors=True)
    if blind:
        raise SuanError(
            f"nodes {', '.join(blind)} do not see the server's home {home}: put it (SUAN_HOME) "
            "on storage every node mounts at the same path, or run the server with "
            "storage.probe: false if you know better"
        )
    return nodes


def _wait(executor: Executor, job_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = executor.poll().get(job_id)
        if status is None or status.all_exited:
            return
        time.sleep(0.2)
    executor.stop(job_id, 0.0)
    executor.poll()
