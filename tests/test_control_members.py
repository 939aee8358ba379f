"""Queue membership against a real server, as a hostile second user: a members-only queue
refuses others' jobs with a 403 naming who may submit; another user's job is a 404 exactly
like a missing one (describe, logs, cancel) and never shows in job lists or node views; a
queue's viewer reads its jobs but cannot cancel them; its admin cancels them."""

from __future__ import annotations

import json
import textwrap

import httpx
import pytest
from control_helpers import job_yaml, wait_for
from control_helpers import server as server

from suan.client import ApiError
from suan.control.auth import Identity
from suan.control.models import JobRow
from suan.control.redact import redact_jobs
from suan.control.store import Store, add_event, database_url
from suan.control.submit import submit
from suan.control.views import job_detail, job_summary

QUEUES = textwrap.dedent("""\
    apiVersion: suan.ai/v1
    kind: Queue
    metadata: {name: secret}
    spec:
      admins: [carol]
      submitters: [bob]
      viewers: [vic]
    ---
    apiVersion: suan.ai/v1
    kind: Queue
    metadata: {name: public}
    """)


def _refusal(call) -> ApiError:
    with pytest.raises(ApiError) as refused:
        call()
    return refused.value


@pytest.fixture
def tenants(server):
    """The server with the queues above, and a client per user (its token as `.token`)."""
    admin = server.client()
    admin.submit_raw(QUEUES)
    users = {}
    for name in ("bob", "carol", "vic", "mallory"):
        token = admin.create_user(name)
        users[name] = server.client(token)
        users[name].token = token
    return admin, users


def test_a_members_only_queue_takes_jobs_only_from_its_members(server, tenants):
    admin, users = tenants
    for outsider in ("mallory", "vic"):
        refused = _refusal(lambda u=outsider: users[u].submit(job_yaml("x", 1, queue="secret")))
        assert refused.status == 403
        assert str(refused.detail) == (
            f"documents[0].spec.queue: {outsider} may not submit to queue 'secret'; it takes "
            "jobs from its submitters (bob), its admins (carol) and cluster admins"
        )
    for member in (users["bob"], users["carol"], admin):
        [job_id] = member.submit(job_yaml("member", 1, steps=1, queue="secret"))
        assert member.describe(job_id)["queue"] == "secret"
    [open_job] = users["mallory"].submit(job_yaml("mine", 1, steps=1, queue="public"))
    assert users["mallory"].describe(open_job)["user"] == "mallory"
    queues = {q["name"]: q for q in users["mallory"].queues()}
    assert (queues["secret"]["open"], queues["secret"]["submitters"]) == (False, ["bob"])
    assert queues["secret"]["viewers"] == ["vic"] and queues["public"]["open"] is True
    assert queues["public"]["submitters"] is None and queues["default"]["open"] is True


def test_another_users_job_is_a_404_like_a_missing_one_and_stays_unnamed(server, tenants):
    admin, users = tenants
    bob, mallory = users["bob"], users["mallory"]
    [bobs] = bob.submit(job_yaml("bobs", ranks=2, devices=2, steps=300, queue="secret"))
    [mine] = mallory.submit(job_yaml("mine", ranks=1, devices=1, steps=300, queue="public"))
    for job_id in (bobs, mine):
        wait_for(lambda j=job_id: admin.describe(j)["state"] == "running", what="running")
    raw = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {mallory.token}"})
    missing = "nosuch-000000"
    for method, path in (("GET", ""), ("GET", "/logs"), ("POST", "/cancel")):
        hidden = raw.request(method, f"/v1/jobs/{bobs}{path}")
        absent = raw.request(method, f"/v1/jobs/{missing}{path}")
        assert hidden.status_code == absent.status_code == 404, (method, path)
        assert hidden.json() == {"detail": f"no job {bobs!r}"}
        assert absent.json() == {"detail": f"no job {missing!r}"}
    assert [j["id"] for j in mallory.jobs(all=True)] == [mine]
    nodes = mallory.nodes()
    assert bobs not in json.dumps(nodes) and bobs not in json.dumps(mallory.queues())
    used = {job for node in nodes for job in node["used"].values()}
    assert used == {mine, "hidden"} and sum(node["hidden"] for node in nodes) == 4
    assert sum(node["hidden"] for node in bob.nodes()) == 1, "mallory's job is hidden from bob"
    assert sum(node["hidden"] for node in admin.nodes()) == 0
    assert bobs in json.dumps(admin.nodes())
    assert bob.describe(bobs)["state"] == "running", "mallory's cancel did nothing"


def test_a_viewer_reads_but_cannot_cancel_and_a_queue_admin_cancels(server, tenants):
    _, users = tenants
    bob, vic, carol = users["bob"], users["vic"], users["carol"]
    [bobs] = bob.submit(job_yaml("bobs", ranks=1, steps=300, queue="secret"))
    wait_for(lambda: "step" in vic.logs(bobs)["data"], what="a log line")
    assert vic.describe(bobs)["user"] == "bob"
    assert [j["id"] for j in vic.jobs()] == [bobs]
    assert {bobs} == {job for node in vic.nodes() for job in node["used"].values()}
    refused = _refusal(lambda: vic.cancel(bobs))
    assert refused.status == 403
    assert refused.detail == (
        f"vic may view but not cancel job {bobs} (a viewer of queue secret); "
        "its owner, the queue's admins and cluster admins may"
    )
    assert [j["id"] for j in carol.jobs()] == [bobs], "carol administers secret"
    carol.cancel(bobs)
    assert vic.wait(bobs, timeout=20)["state"] == "cancelled"


def test_reasons_and_events_name_only_jobs_the_reader_may_see(tmp_path):
    store = Store.open(database_url(tmp_path))
    try:
        with store.session() as session:
            submit(session, Identity("admin", True), QUEUES, None, tmp_path)
            [bobs] = submit(
                session, Identity("bob"), job_yaml("bobs", 1, queue="secret"), None, tmp_path
            ).jobs
            [mine] = submit(
                session, Identity("mallory"), job_yaml("mine", 1), None, tmp_path
            ).jobs
            row = session.get(JobRow, mine["id"])
            row.reason = f"preempted for {bobs['id']}: a higher priority; not {mine['id']}"
            add_event(session, mine["id"], "preempting", f"preempted for {bobs['id']}")
        with store.session() as session:
            row = session.get(JobRow, mine["id"])
            readers = ((Identity("mallory"), "another job"), (Identity("root", True), bobs["id"]))
            for reader, shown in readers:
                views = [job_summary(row), job_detail(session, row)]
                redact_jobs(session, reader, views)
                assert views[0]["reason"] == (
                    f"preempted for {shown}: a higher priority; not {mine['id']}"
                )
                assert views[1]["events"][-1]["message"] == f"preempted for {shown}"
    finally:
        store.close()
