"""Multi-process replicas under a real server: `processes: per-device` makes Suan start one
process per device, and R replicas x N devices form one world of R*N ranks."""

from __future__ import annotations

from pathlib import Path

from control_helpers import server as server

PROBE = Path(__file__).with_name("world_probe.py")


def test_per_device_processes_form_one_world(server):
    spec = f"""\
apiVersion: suan.ai/v1
kind: Job
metadata: {{name: per-device}}
spec:
  replicas: 2
  accelerators: {{count: 2, type: H100}}
  processes: per-device
  command: [python, {PROBE}]
  env: {{OMP_NUM_THREADS: "1"}}
"""
    client = server.client()
    [job_id] = client.submit(spec)
    job = client.wait(job_id, timeout=90)
    assert job["state"] == "succeeded", client.logs(job_id)["data"]
    assert job["ranks"] == 4
    ranks = job["ranks_detail"]
    assert [len(r["devices"].split(",")) for r in ranks] == [1, 1, 1, 1]
    assert len({r["devices"] for r in ranks}) == 4
    worlds = []
    for rank in range(4):
        lines = client.logs(job_id, rank=rank)["data"].splitlines()
        worlds += [line.split()[1:] for line in lines if line.startswith("WORLD ")]
    assert sorted(worlds) == [[str(rank), "4", "10"] for rank in range(4)]
