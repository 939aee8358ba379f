"""The server's Prometheus metrics: what the scrape-time gauges say of a store and a cluster,
the restart causes of the reconciler's stop reasons, and who may read `/metrics`."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from control_helpers import Server, job_yaml, wait_for
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from suan.cluster.generate import cluster_from_shorthand
from suan.cluster.model import NodeHealth
from suan.cluster.snapshot import ReplicaPlacement
from suan.control.auth import Identity, create_user
from suan.control.drain import stop_for_drain
from suan.control.hangs import Hang
from suan.control.inventory import ClusterInventory
from suan.control.jobs import placement_json
from suan.control.lifecycle import JobState
from suan.control.metrics import ControlMetrics, RestartCause, restart_cause
from suan.control.metrics_collector import StoreCollector
from suan.control.models import JobRow
from suan.control.overrides import Action, Override
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec.scripted import RankScript, ScriptedEngine, ScriptedExecutor

ADMIN = Identity("admin", admin=True)
QUEUE = textwrap.dedent("""\
    apiVersion: suan.ai/v1
    kind: Queue
    metadata: {name: team}
    spec:
      guaranteed: {H100: 8, accelerators: 8}
      borrowLimit: {H100: 4}
    """)


def samples(registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, sorted labels) -> value, as Prometheus would read the scrape."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def store(tmp_path):
    opened = Store.open(database_url(tmp_path))
    yield opened
    opened.close()


def a_cluster() -> ScriptedExecutor:
    """Four 8xH100 nodes: n0 with a broken device 7, n2 cordoned, n3 down."""
    nodes = list(cluster_from_shorthand("4x8xH100").nodes)
    nodes[0] = replace(nodes[0], unhealthy_devices=frozenset({7}))
    nodes[2] = replace(nodes[2], health=NodeHealth.CORDONED)
    nodes[3] = replace(nodes[3], health=NodeHealth.DOWN)
    return ScriptedExecutor(ScriptedEngine(tuple(nodes), lambda *_: RankScript(1.0)))


def stored_jobs(store: Store, tmp_path: Path, count: int, queue: str = "team") -> list[str]:
    with store.session() as session:
        submitted = submit(session, ADMIN, QUEUE + "---\n" + "---\n".join(
            job_yaml(f"j{i}", ranks=2, queue=queue) for i in range(count)), None, tmp_path)
    return [job["id"] for job in submitted.jobs]


def set_job(store: Store, job_id: str, **values) -> None:
    with store.session() as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))


def test_the_gauges_count_jobs_waits_queue_use_and_devices_by_state(store, tmp_path):
    executor = a_cluster()
    nodes = executor.inventory()
    running, on_cordoned, capacity, fresh, unknown, done = stored_jobs(store, tmp_path, 6)
    two = (ReplicaPlacement(0, nodes[0].name, (0, 1)), ReplicaPlacement(0, nodes[1].name, (0,)))
    set_job(store, running, state="running", placement=placement_json(two, "H100-SXM-80GB", ""))
    on_node2 = (ReplicaPlacement(0, nodes[2].name, (3,)),)
    set_job(store, on_cordoned, state="scheduled",
            placement=placement_json(on_node2, "H100-SXM-80GB", ""))
    set_job(store, capacity, state="preempted", reason_code="capacity", submit_time=100.0)
    set_job(store, unknown, reason_code="words a newer server wrote")
    set_job(store, done, state="succeeded")
    metrics = ControlMetrics()
    metrics.registry.register(StoreCollector(store, ClusterInventory(executor)))
    seen = samples(metrics.registry)

    def value(name: str, **labels: str) -> float | None:
        return seen.get((name, tuple(sorted(labels.items()))))

    assert value("suan_jobs", queue="team", state="pending") == 2  # fresh, unknown
    assert value("suan_jobs", queue="team", state="running") == 1
    assert value("suan_jobs", queue="team", state="succeeded") == 1
    assert value("suan_jobs_waiting", queue="team", reason="capacity") == 1
    assert value("suan_jobs_waiting", queue="team", reason="none") == 1, fresh
    assert value("suan_jobs_waiting", queue="team", reason="other") == 1
    assert value("suan_jobs_waiting_oldest_seconds", queue="team", reason="capacity") > 1e9
    assert value("suan_queue_devices_used", queue="team", accelerator="H100-SXM-80GB") == 4
    assert value("suan_queue_devices_used", queue="team", accelerator="accelerators") == 4
    assert value("suan_queue_devices_guaranteed", queue="team", accelerator="accelerators") == 8
    guarantees = {dict(labels)["accelerator"] for name, labels in seen
                  if name == "suan_queue_devices_guaranteed"}
    assert len(guarantees) == 2, guarantees
    assert [v for (name, labels), v in seen.items()
            if name == "suan_queue_devices_borrow_limit"] == [4]
    h100 = {dict(labels)["state"]: v for (name, labels), v in seen.items()
            if name == "suan_devices"}
    # n0: 0,1 held, 7 broken; n1: 0 held; n2 cordoned: 3 held; n3 down.
    assert h100 == {"allocated": 4, "unhealthy": 1, "cordoned": 7, "down": 8, "free": 12}
    assert value("suan_nodes", accelerator="H100-SXM-80GB", health="cordoned") == 1
    assert value("suan_nodes", accelerator="H100-SXM-80GB", health="ready") == 2
    labels = {v for _, labels in seen for k, v in labels if k not in ("le", "quantile")}
    assert not labels & {running, on_cordoned, capacity, fresh, unknown, done, "admin"}, (
        "no job id or user name is a label value")


def test_every_restart_cause_is_told_from_the_reconcilers_own_words(store, tmp_path):
    [job_id] = stored_jobs(store, tmp_path, 1)
    drain = Override("n1", Action.DRAIN, "fan noise", "alice", 0.0, 0.0)
    with store.session() as session:
        row = session.get(JobRow, job_id)
        stop_for_drain(session, row, drain)
        drained = row.stop_reason
    hang = f"rank 2 hung: {Hang(2, 40, 1800.0).message()}"  # as suan.control.gang_watch
    said = [
        (JobState.PENDING, drained, RestartCause.DRAIN),
        (JobState.PENDING, "requeued: the engine lost the job", RestartCause.REQUEUE),
        (JobState.PREEMPTED, "preempted for big-1: priority", RestartCause.PREEMPTION),
        (JobState.RESTARTING, hang, RestartCause.HANG),
        (JobState.RESTARTING, "rank 1 exited with code 3", RestartCause.FAILURE),
        (JobState.RESTARTING, "node n1 is down (engine: not responding)", RestartCause.LOST),
        (JobState.RESTARTING, "ranks lost", RestartCause.LOST),
        (JobState.SUCCEEDED, "all ranks exited with code 0", None),
        (JobState.FAILED, "rank 0 exited with code 1", None),
    ]
    assert [restart_cause(target, why) for target, why, _ in said] == [c for *_, c in said]
    metrics = ControlMetrics()
    for target, why, _ in said:
        metrics.run_ended(target, why)
    counted = {dict(labels)["cause"]: v for (name, labels), v in samples(metrics.registry).items()
               if name == "suan_job_restarts_total"}
    assert counted == {"drain": 1, "requeue": 1, "preemption": 1, "hang": 1, "failure": 1,
                       "lost": 2}


def get_metrics(server: Server, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)


def test_metrics_need_the_scrape_token_or_an_admins(tmp_path):
    server = Server(tmp_path / "home")
    server.home.mkdir()
    server.start()
    try:
        scrape = (server.home / "metrics-token").read_text().strip()
        assert (server.home / "metrics-token").stat().st_mode & 0o077 == 0
        with Store.open(database_url(server.home)).session() as session:
            user = create_user(session, "bob")
        refused = [get_metrics(server, token) for token in (None, "x" * 43, user)]
        refused.append(httpx.get(f"{server.url}/metrics",
                                 headers={"Authorization": f"Basic {scrape}"}))
        assert [r.status_code for r in refused] == [401] * 4
        assert "scrape token" in refused[0].json()["detail"]
        assert refused[0].headers["www-authenticate"] == "Bearer"
        for token in (scrape, server.token):
            answer = get_metrics(server, token)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain; version=")
            assert "process_resident_memory_bytes" in answer.text
        assert get_metrics(server, scrape).status_code == 200
        assert httpx.get(f"{server.url}/v1/jobs",
                         headers={"Authorization": f"Bearer {scrape}"}).status_code == 401, (
            "the scrape token opens /metrics alone")
    finally:
        server.stop()


def test_the_scrape_token_file_of_the_config_is_used_and_a_bad_one_named(tmp_path):
    token_file = tmp_path / "scrape-token"
    token_file.write_text("s3cret-scrape-token-0123\n")
    config = tmp_path / "server.yaml"
    config.write_text(f"local: {{devices: 8xH100}}\nmetrics: {{tokenFile: {token_file}}}\n")
    server = Server(tmp_path / "home", config=config)
    server.home.mkdir()
    server.start()
    try:
        assert get_metrics(server, "s3cret-scrape-token-0123").status_code == 200
        assert not (server.home / "metrics-token").exists()
    finally:
        server.stop()
    token_file.write_text("short\n")
    named = r"(?s)error: metrics\.tokenFile: .*scrape-token\s+must\s+hold one token of at\s+least"
    with pytest.raises(RuntimeError, match=named):
        Server(tmp_path / "home", config=config).start()


def test_a_crash_looping_gang_counts_failure_restarts(tmp_path):
    server = Server(tmp_path / "home")
    server.home.mkdir()
    server.start()
    try:
        client = server.client()
        [job_id] = client.submit(job_yaml(
            "flaky", ranks=1, extra="  restartPolicy: on-failure\n").replace(
            "command: [python", "command: [sh, -c, 'exit 3', python"))
        done = client.wait(job_id, timeout=60)
        assert done["state"] == "failed" and done["restarts"] == 3, done["events"]
        seen = wait_for(lambda: get_metrics(server, server.token).text, what="metrics")
        assert 'suan_job_restarts_total{cause="failure"} 3.0' in seen
        assert 'suan_jobs{queue="default",state="failed"} 1.0' in seen
    finally:
        server.stop()
