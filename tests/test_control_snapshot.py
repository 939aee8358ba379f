"""`suan snapshot export`: the inputs of the reconciler's next scheduling cycle, which `suan
schedule --state` replays offline to the same decisions; in-process (a cycle that starts and
preempts jobs, at an injected time) and against a real `suan server`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from control_helpers import JOB_SCRIPT, Server, kill_ranks, running_server, wait_for
from typer.testing import CliRunner

from suan.cli.main import cli
from suan.client import ApiError
from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.models import JobRow
from suan.control.reconciler import Reconciler
from suan.control.snapshot import export_document
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node

runner = CliRunner()


def job_yaml(name: str, devices: int, priority: str = "normal", sleep: bool = True) -> str:
    """A one-replica job on `devices` devices that runs until it is stopped: `sleep`, or the
    test job (which checkpoints every step)."""
    command = "[sleep, '600']" if sleep else f"[python, {JOB_SCRIPT}]"
    return textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          priority: {priority}
          replicas: 1
          accelerators: {{count: {devices}, type: H100}}
          command: {command}
          env: {{STEPS: "100000", STEP_S: "0.2"}}
        """)


def replay(tmp_path: Path, document: dict) -> dict:
    """`suan schedule --state FILE --json` on an exported document."""
    path = tmp_path / f"state-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(cli, ["schedule", "--state", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- in process: one cycle at an injected time ---------------------------------------------------


def test_a_cycle_that_starts_and_preempts_replays_to_the_same_decisions(tmp_path):
    node, simulated = local_node("8xH100")
    config = ControlConfig(home=tmp_path, simulated=simulated, stop_grace_s=1.0)
    store = Store.open(database_url(tmp_path))
    reconciler = Reconciler(store, LocalExecutor(tmp_path, node=node), config)
    admin = Identity("admin", admin=True)

    def queued(*documents: str) -> list[str]:
        ids = []
        for document in documents:  # one submission each: distinct submit times
            with store.session() as session:
                ids += [j["id"] for j in submit(session, admin, document, None, tmp_path).jobs]
        return ids

    t0 = time.time()
    try:
        low = queued(job_yaml("low-a", 4, "low"), job_yaml("low-b", 4, "low", sleep=False))
        reconciler.tick(now=t0)
        with store.session() as session:
            assert {session.get(JobRow, i).state for i in low} == {"running"}
        # Two equal jobs, the later-submitted one named first: one of them fits after a
        # preemption, and a third waits.
        urgent = queued(job_yaml("zz-urgent", 4, "high"), job_yaml("aa-urgent", 4, "high"),
                        job_yaml("waits", 8))
        waiter = reconciler.captures.add()
        reconciler.wake()  # as the API does on a submission
        reconciler.tick(now=t0 + 500.0)
        record = waiter.result(0)
        document = json.loads(json.dumps(export_document(record, "local")))

        assert record.decisions is reconciler.last_decisions
        assert document["now"] == t0 + 500.0 and document["policy"] == "default"
        assert [r["job"] for r in document["running"]] == low
        assert [e["name"] for e in document["jobs"]] == low + urgent
        assert sorted(document["submitTimes"].values()) == list(document["submitTimes"].values())
        assert all("command" not in e["document"]["spec"] for e in document["jobs"])
        decisions = document["decisions"]
        assert decisions == reconciler.last_decisions.to_dict()
        assert {p["for_job"] for p in decisions["preemptions"]} == set(urgent[:2])
        assert {p["job"] for p in decisions["placements"]} == set(urgent[:2])
        assert urgent[2] in {w["job"] for w in decisions["pending"]}

        assert replay(tmp_path, document) == decisions
    finally:
        store.close()
        kill_ranks(tmp_path)


# --- a real server --------------------------------------------------------------------------------


def cli_env(server: Server, token: str | None = None) -> dict[str, str]:
    return {**os.environ, "SUAN_SERVER": server.url, "SUAN_TOKEN": token or server.token}


def export(server: Server, out: Path, token: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "suan.cli.main", "snapshot", "export", "--out", str(out)],
        capture_output=True, text=True, timeout=60, env=cli_env(server, token),
    )


@pytest.fixture
def small_server(tmp_path):
    with running_server(tmp_path / "home", devices="4xH100") as running:
        yield running


def test_an_exported_snapshot_replays_to_the_servers_decisions(small_server, tmp_path):
    client = small_server.client()
    [holder] = client.submit(job_yaml("holder", 4, sleep=False))
    wait_for(lambda: client.describe(holder)["state"] == "running", what="holder running")
    # Equal jobs behind it, each submitted on its own: the first two named last.
    waiting = [client.submit(job_yaml(name, 2))[0] for name in ("zeta", "omega", "alpha")]
    wait_for(lambda: all(client.describe(j)["reason_code"] for j in waiting), what="reasons")

    out = tmp_path / "snapshot.json"
    finished = export(small_server, out)
    assert finished.returncode == 0, finished.stderr
    assert "1 running, 3 pending" in finished.stderr
    document = json.loads(out.read_text())
    [held] = document["running"]
    assert held["job"] == holder and held["replicas"][0]["devices"] == [0, 1, 2, 3]
    assert held["startTime"] == client.describe(holder)["start_time"]
    assert held["lastCheckpoint"] is not None  # the test job checkpoints every step
    times = document["submitTimes"]
    assert [times[j] for j in waiting] == [client.describe(j)["submit_time"] for j in waiting]
    assert times[waiting[0]] < times[waiting[1]] < times[waiting[2]]
    assert document["cluster"]["spec"]["nodes"][0]["devices"] == 4

    decisions = document["decisions"]
    assert replay(tmp_path, document) == decisions
    assert decisions["placements"] == [] and decisions["preemptions"] == []
    # Considered in submit order, not name order; the server stores the same codes.
    assert [w["job"] for w in decisions["pending"]] == waiting
    codes = {j["id"]: j["reason_code"] for j in client.jobs()}
    assert {w["job"]: codes[w["job"]] for w in decisions["pending"]} == {
        w["job"]: w["code"] for w in decisions["pending"]}

    # What the server does once the holder has stopped is what the state without it says:
    # the two submitted first start (by name, `alpha` would have).
    without = dict(document, running=[],
                   jobs=[e for e in document["jobs"] if e["name"] != holder],
                   submitTimes={j: t for j, t in times.items() if j != holder})
    expected = {p["job"] for p in replay(tmp_path, without)["placements"]}
    assert expected == set(waiting[:2])
    client.cancel(holder)
    wait_for(lambda: all(client.describe(j)["state"] == "running" for j in expected),
             what="the first two running")
    assert client.describe(waiting[2])["state"] == "pending"


def test_only_a_cluster_admin_exports(small_server, tmp_path):
    token = small_server.client().create_user("reader")
    finished = export(small_server, tmp_path / "x.json", token)
    assert finished.returncode == 2
    assert "only a cluster admin exports" in finished.stderr
    with pytest.raises(ApiError) as caught:
        small_server.client(token).snapshot()
    assert caught.value.status == 403
    document = small_server.client().snapshot()
    assert document["decisions"] is None and document["exported"]["cycle"] is False
    assert document["running"] == [] and "no job waits" in document["exported"]["note"]
