"""The `suan` commands as a researcher types them: up, submit, jobs, describe, logs, cancel,
nodes, queues, users, down — against the background server `suan up` starts."""

from __future__ import annotations

import json
import os

import pytest
from control_helpers import free_port, job_yaml, kill_ranks, suan, wait_for


@pytest.fixture
def home_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SUAN_TOKEN", "SUAN_SERVER")}
    env["SUAN_HOME"] = str(tmp_path / "home")
    yield env
    suan("down", env=env, check=False)
    kill_ranks(tmp_path / "home")


def test_a_researcher_session_from_up_to_down(home_env, tmp_path):
    port = str(free_port())
    up = suan("up", "--devices", "4xH100", "--port", port, "--stop-grace", "1", env=home_env)
    assert f"http://127.0.0.1:{port}" in up.stdout and "SUAN_TOKEN" in up.stdout
    assert "already" not in suan("up", "--port", port, env=home_env).stdout.lower()
    spec = tmp_path / "job.yaml"
    spec.write_text(job_yaml("cli", ranks=2, steps=3))
    job_id = suan("submit", str(spec), env=home_env).stdout.strip()
    assert job_id.startswith("cli-")
    wait_for(
        lambda: (
            json.loads(suan("jobs", "--all", "--json", env=home_env).stdout)[0]["state"]
            == "succeeded"
        ),
        timeout=30,
        what="the job to succeed",
    )
    described = suan("describe", job_id, env=home_env).stdout
    assert "succeeded" in described and "rank 1:" in described and "events:" in described
    assert "rank 1 step 3/3" in suan("logs", job_id, "--rank", "1", env=home_env).stdout
    assert "rank 0 step 3/3" in suan("logs", job_id, "-f", env=home_env).stdout
    nodes = json.loads(suan("nodes", "--json", env=home_env).stdout)
    assert nodes[0]["devices"] == 4 and nodes[0]["simulated"] is True
    assert "default" in suan("queues", env=home_env).stdout
    token = suan("users", "add", "dana", env=home_env).stdout.strip()
    as_dana = dict(home_env, SUAN_TOKEN=token)
    assert suan("users", "whoami", env=as_dana).stdout.strip() == "dana"
    refused = suan("cancel", job_id, env=as_dana, check=False)
    assert refused.returncode == 2 and f"404: no job '{job_id}'" in refused.stderr
    spec.write_text(job_yaml("long", ranks=1, steps=1000))
    long_id = suan("submit", str(spec), env=as_dana).stdout.strip()
    wait_for(lambda: "running" in suan("jobs", env=as_dana).stdout, what="running")
    assert "cancelling" in suan("cancel", long_id, env=as_dana).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(job_yaml("bad").replace("replicas: 4", "replicas: many"))
    failed = suan("submit", str(bad), env=home_env, check=False)
    assert failed.returncode == 2 and "documents[0].spec.replicas" in failed.stderr
    assert "stopped" in suan("down", env=home_env).stdout
