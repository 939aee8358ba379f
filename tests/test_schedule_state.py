"""Scheduler state files: `suan schedule --state FILE` replays one cycle from a real state
(running jobs, node health, submit times, service classes, the clock), and a state written by
`state_document` reads back into the same cycle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sched_helpers import cluster, job, node, running, snapshot
from typer.testing import CliRunner

from suan.cli.main import cli
from suan.cluster.model import NodeHealth
from suan.cluster.snapshot import Allocation, ReplicaPlacement, Snapshot
from suan.cluster.state import parse_state, state_document
from suan.errors import SpecError
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.queue import QueueSpec
from suan.sched import decide
from suan.sched.service import GRID, ServiceClasses

runner = CliRunner()


def job_document(name: str, devices: int = 4, **spec: object) -> dict:
    return {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"replicas": 1, "accelerators": {"count": devices, "type": "H100"}, **spec}}


def cluster_document(nodes: int = 2) -> dict:
    return {"apiVersion": "suan.ai/v1", "kind": "Cluster", "metadata": {"name": "lab"},
            "spec": {"nodePools": [{"name": "h100", "count": nodes, "accelerator": "H100"}]}}


def state(**sections: object) -> dict:
    return {"apiVersion": "suan.ai/v1", "kind": "SchedulerState", **sections}


def replay(tmp_path: Path, document: dict, *args: str) -> dict:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(cli, ["schedule", "--state", str(path), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- scenarios ----------------------------------------------------------------------------------


def test_equal_jobs_start_in_submit_order_not_name_order(tmp_path):
    # One node of 8 H100, half held by a running job: room for one of two equal waiting jobs.
    document = state(
        now=100.0, cluster=cluster_document(1),
        jobs=[job_document("held"), job_document("alpha"), job_document("zeta")],
        submitTimes={"held": 0.0, "zeta": 10.0, "alpha": 20.0},
        running=[{"job": "held", "startTime": 0.0, "replicas": [
            {"node": "h100-000", "devices": [0, 1, 2, 3]}]}],
    )
    for policy in ("default", "fifo", "priority", "backfill"):
        decided = replay(tmp_path, document, "--policy", policy)
        assert [p["job"] for p in decided["placements"]] == ["zeta"], policy
        assert decided["placements"][0]["replicas"][0]["devices"] == [4, 5, 6, 7]
        assert [w["job"] for w in decided["pending"]] == ["alpha"]
    # Without submit times, names break the tie (as `suan schedule --jobs` always did).
    del document["submitTimes"]
    assert [p["job"] for p in replay(tmp_path, document)["placements"]] == ["alpha"]


def test_a_jobs_file_gets_its_submit_times_and_running_jobs_from_a_state(tmp_path):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump_all([job_document(n) for n in ("old", "alpha", "zeta")]))
    cluster_file = tmp_path / "lab.yaml"
    cluster_file.write_text(yaml.safe_dump(cluster_document(2)))
    state_file = tmp_path / "state.yaml"
    state_file.write_text(yaml.safe_dump(state(
        now=3600, policy="fifo", submitTimes={"zeta": 1, "alpha": 2},
        nodes={"h100-001": {"health": "down", "reason": "xid 79"}},
        running=[{"job": "old", "startTime": 0, "lastCheckpoint": 1800,
                  "replicas": [{"node": "h100-000", "devices": [0, 1, 2, 3]}]}],
    )))
    result = runner.invoke(cli, ["schedule", "--cluster", str(cluster_file), "--jobs", str(jobs),
                                 "--state", str(state_file), "--json"])
    assert result.exit_code == 0, result.output
    decided = json.loads(result.output)
    assert [p["job"] for p in decided["placements"]] == ["zeta"]
    [wait] = decided["pending"]
    assert wait["job"] == "alpha" and wait["code"] == "capacity"
    assert "h100-001 down" in wait["reason"]
    # The state's policy (fifo) is used: the default policy would time-share `old` away.
    default = runner.invoke(cli, ["schedule", "--cluster", str(cluster_file), "--jobs",
                                  str(jobs), "--state", str(state_file), "--json",
                                  "--policy", "default"])
    assert json.loads(default.output)["preemptions"][0]["job"] == "old"


def test_now_from_the_command_line_replaces_the_states(tmp_path):
    document = state(
        now=3600.0, cluster=cluster_document(1),
        jobs=[job_document("old", 8), job_document("new", 8)],
        submitTimes={"old": 0.0, "new": 1.0},
        running=[{"job": "old", "startTime": 0.0, "replicas": [
            {"node": "h100-000", "devices": list(range(8))}]}],
    )
    # After an hour, `old` has reached a worse service class than `new`: time sharing.
    assert replay(tmp_path, document)["preemptions"][0]["job"] == "old"
    # At t=60 it has not run the policy's minimum yet.
    assert replay(tmp_path, document, "--now", "60")["preemptions"] == []


def test_learned_service_classes_order_the_queue(tmp_path):
    # The queue's table puts a job with no service in class 5, the series' table in class 0.
    table = [5] * (len(GRID) + 1)
    document = state(
        now=10.0, cluster=cluster_document(1),
        jobs=[job_document("early"), job_document("late", series="sweep"),
              job_document("third")],
        submitTimes={"early": 1.0, "late": 2.0, "third": 3.0},
        service={"perQueue": {"default": table},
                 "perSeries": [{"queue": "default", "series": "sweep",
                                "classes": [0] * (len(GRID) + 1)}]},
        running=[{"job": "third", "startTime": 0.0, "replicas": [
            {"node": "h100-000", "devices": [0, 1, 2, 3]}]}],
    )
    assert [p["job"] for p in replay(tmp_path, document)["placements"]] == ["late"]
    del document["service"]
    assert [p["job"] for p in replay(tmp_path, document)["placements"]] == ["early"]


def test_mistakes_are_named_by_their_path():
    document = state(
        cluster=cluster_document(1),
        jobs=[job_document("a"), {"name": "b", "document": job_document("b", 0.5)}],
        submitTimes={"ghost": 1.0},
        nodes={"h100-009": {"health": "down"}},
        running=[{"job": "a", "startTime": 0, "replicas": [
            {"node": "h100-000", "devices": [0, 9], "group": "trainer"}]}],
    )
    with pytest.raises(SpecError) as caught:
        parse_state(document, "s.yaml")
    paths = {problem.path for problem in caught.value.problems}
    assert "jobs.1.document.spec.accelerators.count" in paths
    assert "submitTimes.ghost" in paths
    document["jobs"][1]["document"] = job_document("b")
    del document["submitTimes"]
    with pytest.raises(SpecError) as caught:
        parse_state(document, "s.yaml")
    found = {problem.path: problem for problem in caught.value.problems}
    assert set(found) == {"nodes.h100-009", "running.0.replicas.0.group",
                          "running.0.replicas.0.devices"}
    assert "0 to 7" in found["running.0.replicas.0.devices"].allowed


def test_a_device_is_not_held_twice():
    document = state(
        cluster=cluster_document(1), jobs=[job_document("a"), job_document("b")],
        running=[{"job": name, "startTime": 0, "replicas": [
            {"node": "h100-000", "devices": [3, 4]}]} for name in ("a", "b")],
    )
    with pytest.raises(SpecError, match="device 3 of h100-000 is held by a, b"):
        parse_state(document)
    for entry in document["running"]:
        entry["replicas"][0]["share"] = 0.5
    assert len(parse_state(document).snapshot.running) == 2


def test_unknown_fields_and_a_missing_cluster_are_refused(tmp_path):
    with pytest.raises(SpecError) as caught:
        parse_state(state(jobs=[], runing=[]))
    assert [p.path for p in caught.value.problems] == ["runing"]
    assert "running" in caught.value.problems[0].message
    with pytest.raises(SpecError, match="cluster: required field is missing"):
        parse_state(state(jobs=[job_document("a")]))
    result = runner.invoke(cli, ["schedule", "--jobs", str(tmp_path / "x.yaml")])
    assert result.exit_code != 0


def test_without_a_state_the_dry_run_is_unchanged():
    examples = Path(__file__).resolve().parent.parent / "examples"
    args = ["schedule", "--cluster", "2x8xH100", "--jobs",
            str(examples / "jobs" / "mixed.yaml"), "--json"]
    before = runner.invoke(cli, args)
    again = runner.invoke(cli, [*args, "--now", "0", "--policy", "default"])
    assert before.exit_code == 0 and json.loads(before.output) == json.loads(again.output)


# --- round trip ---------------------------------------------------------------------------------


def rich_snapshot() -> tuple[Snapshot, list[Job]]:
    """Two node types, a down node with a reason, an unhealthy device, quotas, a two-group job
    and a fractional one running, learned service classes."""
    from dataclasses import replace

    a100 = node("a100-0", "A100-40GB")
    nodes = (node("h100-0"), replace(node("h100-1"), unhealthy_devices=frozenset({7})),
             replace(node("h100-2"), health=NodeHealth.DOWN, health_reason="xid 79"), a100)
    queues = (QueueSpec("team-a", guaranteed={"H100-SXM-80GB": 8.0}),
              QueueSpec("team-b", borrow_limit={"accelerators": 4.0}, weight=2.0))
    two_groups = Job("trainer", (ReplicaGroup("ps", 1, 1), ReplicaGroup("worker", 2, 2)),
                     queue="team-a", submit_time=5.0, checkpoint_interval_s=600.0)
    pieces = job("inference", devices=1, share=0.5, queue="team-b", submit=6.0)
    allocs = (
        Allocation(two_groups, (ReplicaPlacement(0, "h100-0", (0,)),
                                ReplicaPlacement(1, "h100-0", (1, 2)),
                                ReplicaPlacement(1, "h100-1", (0, 1))), 100.0, 900.0),
        running(pieces, ("a100-0", (3,)), start=200.0, milli=500),
    )
    service = ServiceClasses({"team-a": tuple(range(len(GRID) + 1))}, GRID,
                             per_series={("team-b", "sweep"): (1,) * (len(GRID) + 1)})
    base = snapshot(cluster(*nodes), *allocs, queues=queues, now=4000.5)
    the_snapshot = Snapshot(base.cluster, base.running, base.queues, base.now, service=service)
    pending = [job("big", 2, 8, queue="team-a", submit=30.0, priority=100),
               job("small", 1, 2, queue="team-b", submit=20.0, estimate=3600.0, attained=50.0),
               job("any", 1, 4, types=("A100",), queue="team-b", submit=20.0)]
    return the_snapshot, pending


def test_a_written_state_reads_back_into_the_same_snapshot():
    the_snapshot, pending = rich_snapshot()
    text = json.dumps(state_document(the_snapshot, pending, "default"))
    read = parse_state(json.loads(text))
    assert read.policy == "default"
    assert read.snapshot.cluster.nodes == the_snapshot.cluster.nodes
    assert [n.health_reason for n in read.snapshot.cluster] == [
        n.health_reason for n in the_snapshot.cluster]
    assert read.snapshot.running == the_snapshot.running
    assert read.snapshot.queues == the_snapshot.queues
    assert read.snapshot.service == the_snapshot.service
    assert read.snapshot.now == the_snapshot.now
    assert list(read.pending) == pending
    assert (decide(read.snapshot, read.pending).to_dict()
            == decide(the_snapshot, pending).to_dict())


# --- properties ---------------------------------------------------------------------------------


@st.composite
def cycles(draw: st.DrawFn) -> tuple[Snapshot, list[Job]]:
    """A small cluster, some running jobs on free devices, some waiting jobs."""
    count = draw(st.integers(1, 4))
    nodes = [node(f"n{i}", rack=f"r{i % 2}") for i in range(count)]
    down = draw(st.sets(st.integers(0, count - 1), max_size=1))
    nodes = [n if i not in down else node(n.name, rack=n.rack, health=NodeHealth.DOWN)
             for i, n in enumerate(nodes)]
    free = {(n.name, d) for n in nodes for d in range(n.devices)}
    allocs = []
    for index in range(draw(st.integers(0, 4))):
        where = draw(st.sampled_from(sorted({name for name, _ in free}) or ["none"]))
        devices = sorted(d for name, d in free if name == where)
        size = draw(st.sampled_from([1, 2, 4, 8]))
        if len(devices) < size:
            continue
        taken = tuple(devices[:size])
        free -= {(where, d) for d in taken}
        the_job = job(f"run{index}", devices=size, priority=draw(st.sampled_from([0, 100])),
                      submit=float(index), estimate=draw(st.sampled_from([None, 600.0])))
        allocs.append(running(the_job, (where, taken), start=float(draw(st.integers(0, 3000))),
                              checkpoint=draw(st.sampled_from([None, 1000.0]))))
    pending = [
        job(f"wait{index}", draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 4, 8])),
            priority=draw(st.sampled_from([0, 0, 100])),
            submit=float(draw(st.integers(0, 5))), estimate=draw(st.sampled_from([None, 900.0])))
        for index in range(draw(st.integers(1, 6)))
    ]
    now = float(draw(st.integers(3000, 9000)))
    return snapshot(cluster(*nodes), *allocs, now=now), pending


@settings(derandomize=True, max_examples=120, deadline=None)
@given(cycles(), st.sampled_from(["default", "fifo", "backfill", "priority"]))
def test_a_replayed_state_gives_the_same_decisions(cycle, policy):
    the_snapshot, pending = cycle
    document = json.loads(json.dumps(state_document(the_snapshot, pending, policy)))
    read = parse_state(document)
    assert (decide(read.snapshot, read.pending, read.policy).to_dict()
            == decide(the_snapshot, pending, policy).to_dict())


@settings(derandomize=True, max_examples=120, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=2, max_size=6), st.integers(1, 8),
       st.sampled_from(["default", "fifo", "priority"]))
def test_equal_jobs_start_earliest_submitted_first_then_by_name(times, slots, policy):
    """Jobs alike but for name and submit time, `slots` devices free: those that start are the
    first by (submit time, name), whatever their names' order."""
    names = [f"j{(7 * i) % len(times)}-{i}" for i in range(len(times))]
    document = state(
        cluster={**cluster_document(1), "spec": {"nodes": [
            {"name": "n0", "accelerator": "H100", "devices": slots}]}},
        jobs=[job_document(name, 1) for name in names],
        submitTimes=dict(zip(names, map(float, times), strict=True)),
    )
    read = parse_state(document)
    started = {p.job.name for p in decide(read.snapshot, read.pending, policy).starts}
    expected = sorted(zip(times, names, strict=True))[:slots]
    assert started == {name for _, name in expected}
