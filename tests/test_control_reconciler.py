"""The reconciler in-process, through the crash windows of a launch: a server that died after
spawning the ranks but before recording them adopts them instead of launching again, and one
that died before spawning anything launches the job exactly once."""

from __future__ import annotations

import time
from pathlib import Path

from control_helpers import job_yaml
from sqlalchemy import select

from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.models import EventRow, JobRow
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec.isolation import tagged_processes
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node


def control_plane(home: Path) -> tuple[Store, Reconciler]:
    """A fresh 'server process': store, executor and reconciler over `home` (not started)."""
    node, simulated = local_node("8xH100")
    config = ControlConfig(
        home=home, simulated=simulated, restart_backoff_s=0.1, stop_grace_s=1.0
    )
    store = Store.open(database_url(home))
    return store, Reconciler(store, LocalExecutor(home, node=node), config)


def submitted(store: Store, home: Path, ranks: int) -> str:
    with store.session() as session:
        result = submit(
            session,
            Identity("admin", admin=True),
            job_yaml("crash", ranks=ranks, steps=3),
            None,
            home,
        )
    return result.jobs[0]["id"]


def state_of(store: Store, job_id: str) -> JobRow:
    with store.session() as session:
        return session.get(JobRow, job_id)


def run_until_final(
    store: Store, reconciler: Reconciler, job_id: str, timeout: float = 30.0
) -> JobRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reconciler.tick()
        row = state_of(store, job_id)
        if row.state in ("succeeded", "failed", "cancelled"):
            return row
        time.sleep(0.05)
    raise AssertionError(f"job still {state_of(store, job_id).state}")


def launches(row: JobRow) -> list[str]:
    return (Path(row.checkpoint_dir) / "launches").read_text().splitlines()


def test_ranks_spawned_but_not_recorded_are_adopted_not_launched_again(tmp_path):
    store, first = control_plane(tmp_path)
    job_id = submitted(store, tmp_path, ranks=3)
    with store.session() as session:
        [(_, start)] = first._schedule(session, time.time())
    with store.session() as session:
        request = first._launch_request(session.get(JobRow, job_id))
    first.executor.launch(request, start.replicas)  # ...and the server dies here
    store.close()

    store, second = control_plane(tmp_path)
    second.recover()
    assert state_of(store, job_id).state == "running"
    row = run_until_final(store, second, job_id)
    assert row.state == "succeeded" and row.attempt == 1
    assert sorted(line.split()[1] for line in launches(row)) == ["0", "1", "2"]


def test_a_launch_cut_before_any_spawn_runs_the_job_exactly_once(tmp_path):
    store, first = control_plane(tmp_path)
    job_id = submitted(store, tmp_path, ranks=2)
    with store.session() as session:
        first._schedule(session, time.time())  # scheduled, and the server dies here
    store.close()

    store, second = control_plane(tmp_path)
    second.recover()
    row = run_until_final(store, second, job_id)
    assert row.state == "succeeded"
    assert sorted(line.split()[1] for line in launches(row)) == ["0", "1"]


def test_a_launch_cut_mid_spawn_is_stopped_and_requeued_without_counting_a_restart(tmp_path):
    """The crash came after rank 1 started but before its pid file: recovery finds it by its
    tag, stops both started ranks, and the job (restartPolicy never) runs again as attempt 2
    with no restart counted and nothing of attempt 1 left running."""
    store, first = control_plane(tmp_path)
    with store.session() as session:
        document = job_yaml("cut", ranks=3, steps=400, extra="  restartPolicy: never\n")
        job_id = submit(session, Identity("admin", admin=True), document, None,
                        tmp_path).jobs[0]["id"]
    with store.session() as session:
        [(_, start)] = first._schedule(session, time.time())
    with store.session() as session:
        request = first._launch_request(session.get(JobRow, job_id))
    first.executor.launch(request, start.replicas[:2])
    first.executor.files.pid_path(job_id, 1, 1).unlink()  # ...and the server dies here
    store.close()

    store, second = control_plane(tmp_path)
    tag = second.executor.isolation.tag(job_id, 1)
    assert sorted(tagged_processes(tag)) == [0, 1]
    second.recover()
    deadline = time.monotonic() + 30
    while state_of(store, job_id).state != "running" or state_of(store, job_id).attempt < 2:
        assert time.monotonic() < deadline, state_of(store, job_id).state
        second.tick()
        time.sleep(0.05)
    row = state_of(store, job_id)
    assert row.restarts == 0 and row.attempt == 2
    assert tagged_processes(tag) == {}
    with store.session() as session:
        kinds = [e.kind for e in session.scalars(select(EventRow).where(EventRow.job_id == job_id))]
        requeued = session.scalar(
            select(EventRow.message).where(EventRow.job_id == job_id, EventRow.kind == "requeued")
        )
    assert "restarting" not in kinds
    assert "2 of 3 ranks had started" in requeued
    with store.session() as session:
        session.get(JobRow, job_id).cancel_requested = True
    assert run_until_final(store, second, job_id).state == "cancelled"
    assert tagged_processes(second.executor.isolation.tag(job_id, 2)) == {}


def test_the_reconciler_learns_a_series_from_its_running_and_finished_members(tmp_path):
    store, reconciler = control_plane(tmp_path)
    ids = []
    with store.session() as session:
        for name in ("first", "second"):
            document = job_yaml(name, ranks=1, devices=8, steps=2, extra="  series: sweep\n")
            ids.append(submit(session, Identity("admin", admin=True), document, None,
                              tmp_path).jobs[0]["id"])
    try:
        deadline = time.monotonic() + 30.0
        seen_running = False
        while time.monotonic() < deadline and state_of(store, ids[1]).state != "succeeded":
            reconciler.tick()
            history = reconciler.service
            record = history.series.get(("default", "sweep")) if history else None
            # While the first runs and the second waits, the first is the series' probe.
            seen_running = seen_running or (record is not None and record.outlived is not None)
            time.sleep(0.05)
        assert state_of(store, ids[1]).state == "succeeded"
        assert seen_running
        record = reconciler.service.series["default", "sweep"]
        assert len(record.finished) == 2 and record.outlived is None
    finally:
        store.close()
