"""Teams and identities against a real server: quotas hold jobs back with the reason shown, a
high-priority job preempts a preemptible one (which later resumes from its checkpoint), and a
user can neither see nor cancel another user's job (a 404, as for a missing one); bad input
gets 401/403/404/422, never 500."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest
from control_helpers import job_yaml, wait_for
from control_helpers import server as server

from suan.client import ApiError

QUEUES = textwrap.dedent("""\
    apiVersion: suan.ai/v1
    kind: Queue
    metadata: {name: team-a}
    spec:
      guaranteed: {accelerators: 2}
      borrowLimit: {accelerators: 0}
      admins: [carol]
    """)


def test_a_queue_over_its_quota_waits_with_the_reason_shown(server):
    admin = server.client()
    assert admin.submit_raw(QUEUES)["queues"] == ["team-a"]
    [first] = admin.submit(job_yaml("first", ranks=2, steps=25, queue="team-a"))
    wait_for(lambda: admin.describe(first)["state"] == "running", what="first running")
    [second] = admin.submit(job_yaml("second", ranks=2, steps=2, queue="team-a"))
    waiting = wait_for(
        lambda: (j := admin.describe(second))["reason_code"] == "quota" and j, what="a quota reason"
    )
    assert waiting["state"] == "pending"
    assert "team-a" in waiting["reason"]
    listed = {q["name"]: q for q in admin.queues()}
    assert listed["team-a"]["running"] == 1 and listed["team-a"]["waiting"] == 1
    assert admin.wait(second, timeout=40)["state"] == "succeeded"


def test_a_high_priority_job_preempts_a_preemptible_one_which_resumes(server):
    client = server.client()
    [low] = client.submit(job_yaml("low", ranks=2, devices=4, steps=30, priority="low"))
    wait_for(lambda: client.describe(low)["state"] == "running", what="low running")
    ckpt = client.describe(low)["checkpoint_dir"]
    wait_for(
        lambda: client.describe(low)["state"] == "running" and Path(ckpt, "step").exists(),
        what="a checkpoint",
    )
    [high] = client.submit(
        job_yaml("high", ranks=1, devices=8, steps=5, priority="high", preemptible=False)
    )
    assert client.wait(high, timeout=30)["state"] == "succeeded"
    events = client.describe(low)["events"]
    assert any(e["kind"] == "preempting" and high in e["message"] for e in events)
    assert "preempted" in [e["kind"] for e in events]
    done = client.wait(low, timeout=45)
    assert done["state"] == "succeeded" and done["attempt"] == 2 and done["restarts"] == 0
    resumed = int(Path(ckpt, "resumed-1").read_text())
    assert resumed > 0, "the preempted job resumed from its checkpoint"


def test_users_see_and_cancel_only_their_own_jobs(server):
    admin = server.client()
    admin.submit_raw(QUEUES)
    alice = server.client(admin.create_user("alice"))
    bob = server.client(admin.create_user("bob"))
    carol = server.client(admin.create_user("carol"))
    [bobs] = bob.submit(job_yaml("bobs", ranks=1, steps=300, queue="team-a"))
    assert alice.whoami() == {"user": "alice", "admin": False}
    assert [j["id"] for j in alice.jobs(all=True)] == []
    for attempt in (
        lambda: alice.describe(bobs),
        lambda: alice.cancel(bobs),
        lambda: alice.logs(bobs),
    ):
        with pytest.raises(ApiError) as refused:
            attempt()
        assert refused.value.status == 404 and refused.value.detail == f"no job {bobs!r}"
    with pytest.raises(ApiError) as refused:
        alice.submit_raw(QUEUES)
    assert refused.value.status == 403
    with pytest.raises(ApiError) as refused:
        alice.create_user("mallory", admin=True)
    assert refused.value.status == 403
    assert [j["id"] for j in bob.jobs()] == [bobs]
    assert [j["id"] for j in carol.jobs()] == [bobs], "carol administers team-a"
    assert bobs in [j["id"] for j in admin.jobs()]
    carol.cancel(bobs)
    assert bob.wait(bobs, timeout=20)["state"] == "cancelled"


def test_bad_input_gets_clear_errors_never_a_500(server):
    admin = server.client()
    for token in ("", "suan_not-a-token"):
        with pytest.raises(ApiError) as refused:
            server.client(token).jobs()
        assert refused.value.status == 401
    bad = (
        job_yaml("bad", ranks=2)
        .replace("count: 1", "count: 3")
        .replace("priority: normal", "priorty: normal")
    )
    with pytest.raises(ApiError) as refused:
        admin.submit(bad)
    assert refused.value.status == 422
    paths = {item["path"] for item in refused.value.detail}
    assert "documents[0].spec.priorty" in paths
    no_command = job_yaml("idle").split("  command:")[0]
    with pytest.raises(ApiError) as refused:
        admin.submit(no_command)
    assert [i["path"] for i in refused.value.detail] == ["documents[0].spec.command"]
    with pytest.raises(ApiError) as refused:
        admin.submit(job_yaml("lost", queue="nowhere"))
    assert [i["path"] for i in refused.value.detail] == ["documents[0].spec.queue"]
    with pytest.raises(ApiError) as refused:
        admin.submit("kind: [unclosed")
    assert refused.value.status == 422
    with pytest.raises(ApiError) as refused:
        admin.describe("no-such-job")
    assert refused.value.status == 404
    [job_id] = admin.submit(job_yaml("tiny", ranks=1, steps=1))
    with pytest.raises(ApiError) as refused:
        admin.logs(job_id, rank=5)
    assert refused.value.status == 422 and refused.value.detail[0]["loc"] == ["query", "rank"]
    raw = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"})
    probes = [
        raw.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}),
        raw.post("/v1/jobs", json={"yaml": 42}),
        raw.post("/v1/jobs", json={}),
        raw.post("/v1/jobs", json={"yaml": "- 1\n- [2]\n"}),
        raw.post("/v1/jobs", json={"yaml": "apiVersion: suan.ai/v1\nkind: Job\n"}),
        raw.get("/v1/jobs", params={"all": "maybe"}),
        raw.get("/v1/jobs", params={"limit": -1}),
        raw.get(f"/v1/jobs/{job_id}/logs", params={"offset": "x"}),
        raw.get("/v1/jobs/UPPER_case"),
        raw.post("/v1/users", json={"name": "Bad Name"}),
    ]
    assert [p.status_code for p in probes] == [422] * len(probes), [p.text for p in probes]
    assert all("detail" in p.json() for p in probes)
    assert raw.get("/openapi.json").json()["info"]["title"] == "Suan control plane"
