"""A job that asks for no accelerator runs on CPU, with no visible device."""

from __future__ import annotations

import json
from pathlib import Path

from control_helpers import JOB_SCRIPT
from control_helpers import server as server

CPU_JOB = f"""\
apiVersion: suan.ai/v1
kind: Job
metadata: {{name: preprocess}}
spec:
  replicas: 2
  cpu: 1
  memory: 256Mi
  command: [python, {JOB_SCRIPT}]
  env: {{STEPS: "1", STEP_S: "0.05"}}
"""


def test_a_cpu_only_job_runs_with_no_device(server):
    client = server.client()
    [job_id] = client.submit(CPU_JOB)
    job = client.wait(job_id, timeout=30)
    assert job["state"] == "succeeded", job["events"]
    ckpt = Path(job["checkpoint_dir"])
    seen = [json.loads((ckpt / f"env-0-{rank}.json").read_text()) for rank in range(2)]
    assert {s["WORLD_SIZE"] for s in seen} == {"2"}
    assert {s["SUAN_COLLECTIVE_BACKEND"] for s in seen} == {"gloo"}
    assert all(not s["CUDA_VISIBLE_DEVICES"] for s in seen)
