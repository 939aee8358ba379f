"""Goodput and checkpoint advice against a real local server: a job that reports progress is
killed once, restarts from its checkpoint and finishes; its goodput parts sum to its wall time
and show the restart and the work lost; its ranks were told the advised interval; `suan
goodput` and `suan describe` print them; another tenant's job is a 404."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from control_helpers import running_server, wait_for

from suan.client import ApiError

pytest.importorskip(
    "suan.control.progress_reader", reason="needs the reader of progress lines into the store"
)
JOB_SCRIPT = Path(__file__).parent / "goodput_job.py"
STEPS, STEP_S, CKPT_EVERY, CKPT_S = 60, 0.15, 20, 0.5


def job_yaml(name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          replicas: 2
          accelerators: {{count: 1, type: H100}}
          command: [python, {JOB_SCRIPT}]
          env: {{STEPS: "{STEPS}", STEP_S: "{STEP_S}", CKPT_EVERY: "{CKPT_EVERY}",
                 CKPT_S: "{CKPT_S}"}}
          checkpoint: {{cost: 2s}}
          maxRestarts: 3
        """)


def _last_step(client, job_id: str, rank: int) -> int:
    text = client.logs(job_id, rank, 0)["data"]
    steps = [json.loads(line)["step"] for line in text.splitlines() if '"progress"' in line]
    return steps[-1] if steps else 0


def _cli(server, *args: str) -> str:
    env = {**os.environ, "SUAN_SERVER": server.url, "SUAN_TOKEN": server.token,
           "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-m", "suan.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for this module's tests, which all read the one job `finished` ran."""
    with running_server(tmp_path_factory.mktemp("goodput") / "home") as running:
        yield running


@pytest.fixture(scope="module")
def finished(server):
    """A job killed once past its first checkpoint, restarted and finished."""
    client = server.client()
    [job_id] = client.submit(job_yaml("trainer"))
    wait_for(lambda: _last_step(client, job_id, 1) >= CKPT_EVERY + 8, timeout=60,
             what="progress past the first checkpoint")
    pid = client.describe(job_id)["ranks_detail"][1]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: client.describe(job_id)["state"] == "succeeded", timeout=90,
             what="the job to finish after its restart")
    return client, job_id


def test_a_restarted_job_shows_its_restart_and_lost_work_summing_to_its_wall_time(
    server, finished
):
    client, job_id = finished
    job, figures = client.describe(job_id), client.goodput(job_id)
    kinds = [event["kind"] for event in job["events"]]
    assert "rank-failed" in kinds and "restarting" in kinds
    parts = figures["breakdown"]
    wall = job["end_time"] - job["submit_time"]
    assert figures["wall_s"] == pytest.approx(wall, rel=0.01)
    assert sum(parts.values()) == pytest.approx(wall, rel=0.01)
    assert parts["restart"] > 0.3, "backoff and relaunch count as restart time"
    assert parts["lost"] > STEP_S, "the steps since the last checkpoint were lost"
    assert parts["checkpoint"] > CKPT_S, "the saves of both attempts count"
    assert parts["productive"] > (STEPS * STEP_S) / 2
    assert parts["productive_unknown"] == 0 and figures["reports_progress"]
    assert 0 < figures["runtime_goodput"] < 1
    assert figures["program_goodput"] is None and "names no model" in figures["notes"][0]


def test_ranks_get_the_advised_interval_and_describe_names_its_inputs(server, finished):
    client, job_id = finished
    advice = client.describe(job_id)["checkpoint"]
    assert advice["cost_source"] == "spec" and advice["cost_s"] == 2.0
    assert advice["nodes"] == 1 and advice["interval_s"] > 0
    assert advice["line"].startswith("checkpoint every ")
    assert "cost 2s (spec), 1 node at " in advice["line"] and advice["line"].endswith("(Daly)")
    home = Path(client.describe(job_id)["checkpoint_dir"])
    for attempt in (0, 1):
        seen = json.loads((home / f"interval-{attempt}.json").read_text())
        given = float(seen["SUAN_CHECKPOINT_INTERVAL_S"])
        assert given == pytest.approx(advice["interval_s"], rel=0.01)


def test_the_cli_prints_goodput_rows_the_total_and_describe_lines(server, finished):
    _client, job_id = finished
    listing = json.loads(_cli(server, "goodput", "--json"))
    [row] = [r for r in listing["jobs"] if r["id"] == job_id]
    assert listing["total"]["jobs"] == 1
    assert listing["total"]["device_s"] == pytest.approx(row["wall_s"] * 2, rel=0.01)
    table = _cli(server, "goodput", "--since", "1h")
    assert job_id in table and "total (1 jobs)" in table
    described = _cli(server, "describe", job_id)
    assert "goodput: wall " in described and "restart " in described and "lost " in described
    assert "checkpoint every " in described


def test_another_tenants_job_goodput_is_a_404(server, finished):
    admin, job_id = finished
    mallory = server.client(admin.create_user("mallory"))
    with pytest.raises(ApiError) as refused:
        mallory.goodput(job_id)
    assert refused.value.status == 404
    assert mallory.goodput_all()["jobs"] == []
    assert [r["id"] for r in admin.goodput_all(queue="default")["jobs"]] == [job_id]
