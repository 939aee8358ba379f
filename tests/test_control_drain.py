"""Operator cordon, uncordon and drain, through a real server on the local engine (one node)
and, for the restart on another node, the reconciler over the scripted engine (two nodes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from control_helpers import Server, job_yaml, wait_for
from control_helpers import server as server
from sqlalchemy import select

from suan.catalog import default_catalog
from suan.client import ApiError
from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.leader import Lease
from suan.control.models import EventRow, JobRow
from suan.control.node_health import Verdict
from suan.control.overrides import Action, set_override
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec.nodes import engine_node
from suan.exec.scripted import RankScript, ScriptedEngine, ScriptedExecutor

LONG_JOB = dict(ranks=2, steps=400, step_s=0.1)


def _only_node(client) -> str:
    [node] = client.nodes()
    return node["name"]


def _suan(server: Server, *args: str) -> subprocess.CompletedProcess:
    """`suan ARGS` against `server`, as its admin, on a wide terminal."""
    env = {**os.environ, "SUAN_SERVER": server.url, "SUAN_TOKEN": server.token, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "suan.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _events(client, job_id: str, kind: str) -> list[str]:
    return [e["message"] for e in client.describe(job_id)["events"] if e["kind"] == kind]


def test_only_a_cluster_admin_cordons_and_bad_requests_name_what_is_wrong(server):
    admin = server.client()
    node = _only_node(admin)
    bob = server.client(admin.create_user("bob"))
    for call in (lambda: bob.cordon(node, "x"), lambda: bob.drain(node, "x", 5),
                 lambda: bob.uncordon(node)):
        with pytest.raises(ApiError) as refused:
            call()
        assert refused.value.status == 403 and "bob is not one" in str(refused.value)
    with pytest.raises(ApiError) as unknown:
        admin.cordon("no-such-node", "x")
    assert unknown.value.status == 404
    assert "'no-such-node'" in str(unknown.value) and node in str(unknown.value)
    for grace in (-1, "soon", 10 * 86400):
        answer = httpx.post(f"{server.url}/v1/nodes/{node}/drain",
                            json={"reason": "r", "grace_s": grace},
                            headers={"Authorization": f"Bearer {server.token}"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", "grace_s"]
    answer = httpx.post(f"{server.url}/v1/nodes/{node}/cordon", json={},
                        headers={"Authorization": f"Bearer {server.token}"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "reason"]
    assert admin.nodes()[0]["operator"] is None  # nothing refused was recorded
    calls = [c for c in admin.audit() if "/v1/nodes/" in c["path"]]
    assert {(c["user"], c["status"]) for c in calls} >= {("bob", 403), ("admin", 404)}


def test_cordon_keeps_new_work_off_and_uncordon_lets_it_run(server):
    client = server.client()
    node = _only_node(client)
    answer = client.cordon(node, "fan noise")
    assert answer["operator"]["state"] == "cordoned"
    [shown] = client.nodes()
    assert shown["health"] == "cordoned" and shown["engine_health"] == "ready"
    assert shown["health_reason"] == "cordoned by admin: fan noise"
    assert shown["operator"]["by"] == "admin" and shown["operator"]["reason"] == "fan noise"
    [job_id] = client.submit(job_yaml("held", ranks=1, steps=2))
    waiting = wait_for(lambda: f"{node} cordoned" in (j := client.describe(job_id))["reason"]
                       and j, what="a reason naming the cordoned node")
    assert waiting["state"] == "pending" and waiting["attempt"] == 0
    client.uncordon(node)
    assert client.nodes()[0]["health"] == "ready" and client.nodes()[0]["operator"] is None
    assert client.wait(job_id, timeout=60)["state"] == "succeeded"


def test_drain_stops_and_requeues_the_gang_with_the_reason_and_no_restart_counted(server):
    client = server.client()
    node = _only_node(client)
    [job_id] = client.submit(job_yaml("drained", **LONG_JOB))
    wait_for(lambda: client.describe(job_id)["state"] == "running", what="the job to run")
    client.drain(node, "ECC errors on GPU 3", grace=0.5)
    assert client.nodes()[0]["operator"]["state"] == "draining"
    waiting = wait_for(
        lambda: (j := client.describe(job_id))["state"] == "pending" and f"{node}" in j["reason"]
        and j,
        what="the drained job to wait",
    )
    assert waiting["restarts"] == 0 and waiting["attempt"] == 1
    [drain] = _events(client, job_id, "drain")
    assert f"node {node} drained by admin: ECC errors on GPU 3" in drain
    [requeued] = _events(client, job_id, "requeued")
    assert node in requeued and "ECC errors on GPU 3" in requeued
    assert f"{node} cordoned" in waiting["reason"]  # it waits for the drained node
    described = _suan(server, "describe", job_id).stdout
    assert "why it waits:" in described and f"{node} cordoned" in described
    assert f"drain node {node} drained by admin: ECC errors on GPU 3" in " ".join(
        described.split())
    assert client.nodes()[0]["operator"]["state"] == "drained"
    client.uncordon(node)
    wait_for(lambda: client.describe(job_id)["attempt"] == 2, what="the second attempt")
    assert client.describe(job_id)["restarts"] == 0


def test_a_job_that_ends_within_the_grace_is_left_alone(server):
    client = server.client()
    node = _only_node(client)
    [job_id] = client.submit(job_yaml("quick", ranks=1, steps=5, step_s=0.1))
    wait_for(lambda: client.describe(job_id)["state"] == "running", what="the job to run")
    client.drain(node, "maintenance", grace="1m")
    assert client.wait(job_id, timeout=60)["state"] == "succeeded"
    assert _events(client, job_id, "drain") == []
    assert client.nodes()[0]["operator"]["state"] == "draining"  # its grace still runs


def test_a_cordon_outlives_a_server_restart(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    running = Server(home).start()
    try:
        node = _only_node(running.client())
        running.client().cordon(node, "rack power work")
        running.kill()
        running.start()
        [shown] = running.client().nodes()
        assert shown["health"] == "cordoned"
        assert shown["health_reason"] == "cordoned by admin: rack power work"
    finally:
        running.stop()


def test_the_cli_drains_and_lists_the_operators_word(server):
    node = _only_node(server.client())

    def suan(*args: str) -> subprocess.CompletedProcess:
        return _suan(server, *args)

    done = suan("nodes", "drain", node, "--reason", "PSU swap", "--grace", "10m")
    assert done.returncode == 0 and f"node {node}: draining (drained by admin: PSU swap)" in (
        done.stdout)
    listed = json.loads(suan("nodes", "--json").stdout)
    assert listed[0]["operator"]["drain_at"] - listed[0]["operator"]["at"] == pytest.approx(600)
    assert "draining by admin" in suan("nodes").stdout
    bad = suan("nodes", "drain", node, "--reason", "x", "--grace", "soon")
    assert bad.returncode == 2 and "grace:" in bad.stderr and "Traceback" not in bad.stderr
    assert suan("nodes", "uncordon", node).returncode == 0
    assert json.loads(suan("nodes", "--json").stdout)[0]["operator"] is None


# -- restarted elsewhere: the reconciler over two scripted nodes ---------------------------

class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _scripted_plane(tmp_path):
    catalog = default_catalog()
    nodes = tuple(engine_node(name, "H100-SXM-80GB", 8, catalog, tiers={}, labels={})
                  for name in ("a", "b"))
    clock = _Clock()
    engine = ScriptedEngine(nodes, lambda launch, rank, env: RankScript(3600.0), clock)
    store = Store.open(database_url(tmp_path))
    config = ControlConfig(home=tmp_path, simulated=True, policy="default")
    reconciler = Reconciler(store, ScriptedExecutor(engine), config, Lease(store, ttl_s=3600.0))
    return clock, store, reconciler


def _tick(clock: _Clock, reconciler: Reconciler, now: float) -> None:
    clock.now = now
    reconciler.wake()
    reconciler.tick(now=now)


def _job(store: Store, job_id: str) -> JobRow:
    with store.session() as session:
        row = session.scalars(select(JobRow).where(JobRow.id == job_id)).one()
        session.expunge(row)
    return row


def _node_of(row: JobRow) -> str:
    return json.loads(row.placement)["replicas"][0]["node"]


def test_a_drained_gang_restarts_on_another_node_without_counting_a_restart(tmp_path):
    clock, store, reconciler = _scripted_plane(tmp_path)
    spec = {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": "big"},
            "spec": {"replicas": 1, "accelerators": {"count": 8, "type": "H100"},
                     "command": ["train"], "maxRestarts": 1}}
    with store.session() as session:
        job_id = submit(session, Identity("admin", admin=True), json.dumps(spec), None,
                        tmp_path).jobs[0]["id"]
    _tick(clock, reconciler, 1.0)
    first = _node_of(_job(store, job_id))
    with store.session() as session:
        set_override(session, first, Action.DRAIN, "bad NVLink", "alice", 2.0, grace_s=10.0)
    _tick(clock, reconciler, 5.0)  # within the grace: it runs on
    assert _job(store, job_id).state == "running"
    for now in (12.0, 12.5, 13.0):
        _tick(clock, reconciler, now)
    row = _job(store, job_id)
    other = {"a": "b", "b": "a"}[first]
    assert (row.state, _node_of(row), row.attempt, row.restarts) == ("running", other, 2, 0)
    with store.session() as session:
        kinds = list(session.scalars(select(EventRow.kind).where(EventRow.job_id == job_id)))
    assert kinds.count("drain") == 1 and "requeued" in kinds
    assert reconciler.inventory.current().node(first).health == "cordoned"


def test_a_device_verdict_of_drain_drains_the_node_with_the_devices_reason(tmp_path):
    clock, _store, reconciler = _scripted_plane(tmp_path)
    _tick(clock, reconciler, 1.0)
    verdict = Verdict("nvidia", "drain", "GPU 2: XID 79")
    reconciler.inventory.set_verdicts("nvidia", {"a": [verdict]})
    _tick(clock, reconciler, 2.0)
    node = reconciler.inventory.current().node("a")
    assert node.health == "cordoned"
    assert node.health_reason == "drained by nvidia: GPU 2: XID 79"
    assert reconciler.inventory.current().node("b").health == "ready"


def test_a_new_leader_keeps_the_drain_and_places_the_gang_off_the_drained_node(tmp_path):
    clock, store, reconciler = _scripted_plane(tmp_path)
    with store.session() as session:
        set_override(session, "a", Action.DRAIN, "bad NVLink", "alice", 0.0, grace_s=0.0)
    reconciler.lease.release()  # the first server steps down before anything ran
    engine = reconciler.executor.scripted
    config = ControlConfig(home=tmp_path, simulated=True, policy="default")
    leader = Reconciler(store, ScriptedExecutor(engine), config,
                        Lease(store, "second", ttl_s=3600.0))
    spec = {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": "one"},
            "spec": {"replicas": 1, "accelerators": {"count": 8, "type": "H100"},
                     "command": ["train"]}}
    with store.session() as session:
        job_id = submit(session, Identity("admin", admin=True), json.dumps(spec), None,
                        tmp_path).jobs[0]["id"]
    _tick(clock, leader, 1.0)
    assert leader.lease.status()["leader"] == "second"
    assert leader.inventory.current().node("a").health_reason == "drained by alice: bad NVLink"
    assert _node_of(_job(store, job_id)) == "b"
