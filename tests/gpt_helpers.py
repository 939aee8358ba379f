"""The GPT example as the main job on every engine: its spec, its final loss, its reference
run on the local executor (once per test session) and its rank processes on this machine."""

from __future__ import annotations

import re
import tempfile
import time
from functools import cache
from pathlib import Path

from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import JobLaunch
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node

ROOT = Path(__file__).parents[1]
STEPS = 60
COMMAND = ["python", "examples/gpt/train.py", "--steps", str(STEPS), "--checkpoint-every", "10"]


def gpt_spec(name: str, step_seconds: float) -> str:
    """4 ranks of one device each, spread over the nodes, restarted from checkpoints."""
    command = ", ".join(f'"{word}"' for word in [*COMMAND, "--step-seconds", str(step_seconds)])
    return f"""\
apiVersion: suan.ai/v1
kind: Job
metadata: {{name: {name}}}
spec:
  replicas: 4
  accelerators: {{count: 1, type: H100}}
  topology: {{placement: spread}}
  command: [{command}]
  env: {{OMP_NUM_THREADS: "1"}}
  restartPolicy: on-failure
  maxRestarts: 5
"""


def final_loss(text: str) -> float:
    return float(re.findall(r"final loss ([0-9.]+)", text)[-1])


@cache
def reference_loss() -> float:
    """The same training on the local executor, uninterrupted (computed once)."""
    home = Path(tempfile.mkdtemp(prefix="suan-gpt-reference-"))
    node, _ = local_node("8xH100")
    executor = LocalExecutor(home, node=node)
    launch = JobLaunch(
        "reference",
        1,
        tuple(COMMAND),
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
