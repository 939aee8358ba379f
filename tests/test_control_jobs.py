"""Scenarios against a real `suan server` with real rank processes: a gang runs with a
consistent torchrun environment, a killed rank restarts the gang from its checkpoint, a crashed
server re-adopts its ranks without launching anything twice, and cancel stops every rank."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from control_helpers import Server, job_yaml, wait_for
from control_helpers import server as server


def checkpoints(client, job_id: str) -> Path:
    return Path(client.describe(job_id)["checkpoint_dir"])


def test_four_ranks_run_at_once_with_a_consistent_environment(server):
    client = server.client()
    [job_id] = client.submit(job_yaml("gang", ranks=4, steps=3))
    job = client.wait(job_id, timeout=30)
    assert job["state"] == "succeeded", job["events"]
    ckpt = checkpoints(client, job_id)
    seen = [json.loads((ckpt / f"env-0-{rank}.json").read_text()) for rank in range(4)]
    assert [s["RANK"] for s in seen] == ["0", "1", "2", "3"]
    assert {s["WORLD_SIZE"] for s in seen} == {"4"}
    assert [s["LOCAL_RANK"] for s in seen] == ["0", "1", "2", "3"]
    assert {s["LOCAL_WORLD_SIZE"] for s in seen} == {"4"}
    assert {s["NODE_RANK"] for s in seen} == {"0"}
    assert len({(s["MASTER_ADDR"], s["MASTER_PORT"]) for s in seen}) == 1
    assert {s["SUAN_JOB_ID"] for s in seen} == {job_id}
    assert {s["SUAN_COLLECTIVE_BACKEND"] for s in seen} == {"gloo"}
    assert {s["SUAN_RESTART_COUNT"] for s in seen} == {"0"}
    assert sorted(s["CUDA_VISIBLE_DEVICES"] for s in seen) == ["0", "1", "2", "3"]
    assert {s["SUAN_TOKEN"] for s in seen} == {None}, "the server's token never reaches a job"
    assert [r["exit_code"] for r in job["ranks_detail"]] == [0, 0, 0, 0]
    assert "rank 3 step 3/3" in client.logs(job_id, rank=3)["data"]
    import httpx

    admin = {"Authorization": f"Bearer {server.token}"}
    metrics = httpx.get(f"{server.url}/metrics", headers=admin)
    assert 'suan_jobs{queue="default",state="succeeded"} 1.0' in metrics.text
    assert 'suan_devices{accelerator="H100-SXM-80GB",state="free"} 8.0' in metrics.text


def _rank_process(pid: int) -> int:
    """The training process under a rank's shim (the shim's only child)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


def test_a_killed_rank_restarts_the_gang_from_its_checkpoint(server):
    client = server.client()
    [job_id] = client.submit(job_yaml("resume", ranks=4, steps=30, step_s=0.1))
    ckpt = wait_for(
        lambda: client.describe(job_id)["state"] == "running" and checkpoints(client, job_id),
        what="running",
    )
    wait_for(
        lambda: (ckpt / "step").exists() and int((ckpt / "step").read_text()) >= 5,
        what="a checkpoint at step 5",
    )
    shim = client.describe(job_id)["ranks_detail"][2]["pid"]
    os.kill(_rank_process(shim), signal.SIGKILL)
    job = client.wait(job_id, timeout=45)
    assert job["state"] == "succeeded", job["events"]
    assert job["restarts"] == 1 and job["attempt"] == 2
    kinds = [e["kind"] for e in job["events"]]
    assert "rank-failed" in kinds and "restarting" in kinds
    assert any("rank 2 exited with code 137" in e["message"] for e in job["events"])
    assert int((ckpt / "resumed-1").read_text()) >= 5, "the second attempt resumed"
    assert json.loads((ckpt / "env-1-0.json").read_text())["SUAN_RESTART_COUNT"] == "1"


def test_a_crashed_server_re_adopts_running_ranks_and_launches_nothing_twice(server):
    client = server.client()
    [job_id] = client.submit(job_yaml("survivor", ranks=4, steps=60, step_s=0.1))
    wait_for(lambda: client.describe(job_id)["state"] == "running", what="running")
    ckpt = checkpoints(client, job_id)
    server.kill()
    restarted = Server(server.home, devices=server.devices)
    restarted.start()
    server.process = restarted.process  # the fixture stops the new one
    server.port = restarted.port
    client = restarted.client()
    assert client.describe(job_id)["state"] in ("running", "succeeded"), "still tracked"
    job = client.wait(job_id, timeout=45)
    assert job["state"] == "succeeded", job["events"]
    launches = (ckpt / "launches").read_text().split("\n")
    assert sorted(line.split()[1] for line in launches if line) == ["0", "1", "2", "3"]
    assert job["attempt"] == 1 and job["restarts"] == 0


def test_cancel_stops_every_rank(server):
    client = server.client()
    [job_id] = client.submit(job_yaml("endless", ranks=2, steps=10_000))
    wait_for(lambda: client.describe(job_id)["state"] == "running", what="running")
    pids = [r["pid"] for r in client.describe(job_id)["ranks_detail"]]
    client.cancel(job_id)
    job = client.wait(job_id, timeout=20)
    assert job["state"] == "cancelled"
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
        )
    assert "cancel-requested" in [e["kind"] for e in job["events"]]


def test_a_failing_job_is_given_up_after_its_restart_limit(server):
    client = server.client()
    spec = job_yaml("doomed", ranks=2).replace("maxRestarts: 3", "maxRestarts: 1")
    spec = spec.replace(
        f"command: [python, {Path(__file__).parent / 'control_job.py'}]",
        "command: [python, -c, 'import sys; sys.exit(3)']",
    )
    [job_id] = client.submit(spec)
    job = client.wait(job_id, timeout=30)
    assert job["state"] == "failed"
    assert job["restarts"] == 1 and job["exit_code"] == 3


def test_a_server_on_postgresql_runs_a_gang(tmp_path):
    url = os.environ.get("SUAN_TEST_POSTGRES_URL")
    if not url:
        import pytest

        pytest.skip(
            "no PostgreSQL server: set SUAN_TEST_POSTGRES_URL "
            '(eval "$(bash scripts/ci-postgres.sh)")'
        )
    import uuid

    import sqlalchemy as sa

    from suan.control.store import database_url

    schema = f"srv_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(database_url(None, url))
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    home = tmp_path / "home"
    home.mkdir()
    running = Server(home, db=f"{url}?options=-csearch_path%3D{schema}")
    try:
        client = running.start().client()
        [job_id] = client.submit(job_yaml("on-postgres", ranks=2, steps=2))
        assert client.wait(job_id, timeout=30)["state"] == "succeeded"
    finally:
        running.stop()
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
