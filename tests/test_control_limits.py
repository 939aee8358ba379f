"""Time limits, holds and requeue against a real server with real rank processes: a run over
its time limit is stopped and ends `timeout` with its reason; a queue's default and maximum
limit apply at submit; a held job is never scheduled until released; a requeued job goes back
to pending and resumes from its checkpoint, no restart counted; only those who may cancel a
job may hold, release or requeue it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from control_helpers import job_yaml, wait_for
from control_helpers import server as server

from suan.client import ApiError
from suan.control.time_limits import overrun
from suan.jobs.model import Job, ReplicaGroup

QUEUES = textwrap.dedent("""\
    apiVersion: suan.ai/v1
    kind: Queue
    metadata: {name: team-a}
    spec:
      admins: [carol]
      viewers: [dave]
      defaultTimeLimit: 1h
      maxTimeLimit: 2h
    """)


def suan_cli(server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUAN_SERVER": server.url, "SUAN_TOKEN": server.token}
    return subprocess.run([sys.executable, "-m", "suan.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_run_overruns_only_past_its_limit_and_the_reason_says_by_how_much():
    two_hours = Job("j", (ReplicaGroup(),), time_limit_s=7200.0)
    assert overrun(two_hours, 100.0, 7300.0) is None, "at the limit exactly it may run on"
    assert overrun(two_hours, 100.0, 7301.0) == "ran 2h00m, over its time limit of 2h"
    assert overrun(two_hours, None, 1e9) is None, "a run not started has run no time"
    assert overrun(Job("j", (ReplicaGroup(),)), 0.0, 1e9) is None, "no limit, no overrun"
    short = Job("j", (ReplicaGroup(),), time_limit_s=2.0)
    assert overrun(short, 0.0, 2.25) == "ran 2.25s, over its time limit of 2s"


def test_a_run_over_its_time_limit_is_stopped_and_ends_timeout(server):
    client = server.client()
    spec = job_yaml("endless", ranks=2, steps=10_000, extra="  timeLimit: 2s\n")
    [job_id] = client.submit(spec)
    wait_for(lambda: client.describe(job_id)["state"] == "running", what="running")
    job = client.wait(job_id, timeout=30)
    assert job["state"] == "timeout", job["events"]
    assert job["reason"].startswith("ran ") and "over its time limit of 2s" in job["reason"]
    assert job["restarts"] == 0, "a run over its limit is not restarted"
    ran = job["end_time"] - job["start_time"]
    assert 2.0 <= ran < 2.0 + 2.0 + 5.0, "stopped after the limit, within the stop grace"
    stops = [e["message"] for e in job["events"] if e["kind"] == "stopping"]
    assert any("SIGTERM" in message for message in stops)
    for rank in job["ranks_detail"]:
        assert rank["exit_code"] != 0


def test_a_queue_gives_its_default_limit_and_refuses_one_over_its_maximum(server):
    admin = server.client()
    admin.submit_raw(QUEUES)
    [plain] = admin.submit(job_yaml("plain", ranks=1, steps=1, queue="team-a"))
    assert admin.describe(plain)["spec"]["spec"]["timeLimit"] == 3600
    [own] = admin.submit(job_yaml("own", ranks=1, steps=1, queue="team-a",
                                  extra="  timeLimit: 90m\n"))
    assert admin.describe(own)["spec"]["spec"]["timeLimit"] == "90m"
    with pytest.raises(ApiError) as refused:
        admin.submit(job_yaml("long", ranks=1, queue="team-a", extra="  timeLimit: 3h\n"))
    assert refused.value.status == 422
    assert "documents[0].spec.timeLimit" in str(refused.value.detail)
    assert "maxTimeLimit of queue 'team-a' (2h)" in str(refused.value.detail)
    assert admin.wait(plain, timeout=30)["state"] == "succeeded"


def test_a_held_job_waits_until_released_and_only_its_managers_may_hold_it(server):
    admin = server.client()
    admin.submit_raw(QUEUES)
    bob = server.client(admin.create_user("bob"))
    carol = server.client(admin.create_user("carol"))
    dave = server.client(admin.create_user("dave"))
    alice = server.client(admin.create_user("alice"))
    [blocker] = admin.submit(job_yaml("blocker", ranks=1, devices=8, steps=10_000))
    wait_for(lambda: admin.describe(blocker)["state"] == "running", what="blocker running")
    [job_id] = bob.submit(job_yaml("bobs", ranks=2, steps=2, queue="team-a"))
    for who, status in ((alice, 404), (dave, 403)):
        with pytest.raises(ApiError) as refused:
            who.hold(job_id)
        assert refused.value.status == status
    assert carol.hold(job_id)["held_by"] == "carol"
    admin.cancel(blocker)
    assert admin.wait(blocker, timeout=20)["state"] == "cancelled"
    time.sleep(1.0)  # ten ticks with every device free
    held = bob.describe(job_id)
    assert held["state"] == "pending" and held["held_by"] == "carol"
    assert (held["reason"], held["reason_code"]) == ("held by carol", "held")
    with pytest.raises(ApiError) as refused:
        dave.release(job_id)
    assert refused.value.status == 403
    bob.release(job_id)
    done = bob.wait(job_id, timeout=30)
    assert done["state"] == "succeeded"
    kinds = [e["kind"] for e in done["events"]]
    assert kinds.index("held") < kinds.index("released") < kinds.index("scheduled")
    with pytest.raises(ApiError) as refused:
        bob.hold(job_id)
    assert refused.value.status == 409 and "succeeded" in refused.value.detail


def test_a_requeued_job_resumes_from_its_checkpoint_without_counting_a_restart(server):
    client = server.client()
    [job_id] = client.submit(job_yaml("moved", ranks=2, steps=40, step_s=0.1))
    ckpt = Path(wait_for(lambda: (j := client.describe(job_id))["state"] == "running"
                         and j["checkpoint_dir"], what="running"))
    wait_for(lambda: (ckpt / "step").exists() and int((ckpt / "step").read_text()) >= 5,
             what="a checkpoint at step 5")
    assert client.requeue(job_id)["requeue_requested"] is True
    with pytest.raises(ApiError) as refused:
        client.requeue(job_id)
    assert refused.value.status == 409
    done = client.wait(job_id, timeout=45)
    assert done["state"] == "succeeded", done["events"]
    assert done["attempt"] == 2 and done["restarts"] == 0
    kinds = [e["kind"] for e in done["events"]]
    assert "requeue-requested" in kinds and "requeued" in kinds
    assert int((ckpt / "resumed-1").read_text()) >= 5, "the second run resumed"


def test_the_cli_holds_releases_and_refuses_a_requeue_of_a_waiting_job(server):
    client = server.client()
    [blocker] = client.submit(job_yaml("blocker", ranks=1, devices=8, steps=10_000))
    wait_for(lambda: client.describe(blocker)["state"] == "running", what="blocker running")
    [job_id] = client.submit(job_yaml("later", ranks=1, steps=1))
    held = suan_cli(server, "hold", job_id)
    assert held.returncode == 0 and f"{job_id} held by admin" in held.stdout, held.stderr
    refused = suan_cli(server, "requeue", job_id)
    assert refused.returncode != 0
    assert "only a scheduled or running job can be requeued" in refused.stderr
    assert client.describe(job_id)["reason_code"] == "held"
    released = suan_cli(server, "release", job_id)
    assert released.returncode == 0 and f"{job_id} released" in released.stdout
    assert client.describe(job_id)["held_by"] is None
    client.cancel(blocker)
    assert client.wait(job_id, timeout=30)["state"] == "succeeded"
