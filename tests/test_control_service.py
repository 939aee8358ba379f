"""The control plane learns service classes from the jobs that succeeded in its store."""

from __future__ import annotations

import json

from suan.control.models import JobRow
from suan.control.service import device_seconds, load_history
from suan.control.store import Store, database_url
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.spec import job_to_document
from suan.sched.service import MIN_SAMPLES


def _row(index: int, state: str, run_s: float | None, devices: int = 2,
         series: str = "") -> JobRow:
    job = Job(f"j{index}", (ReplicaGroup(replicas=1, accelerators=devices),), series=series)
    start = None if run_s is None else 100.0 + index
    return JobRow(
        id=f"j-{index}", name="j", user="alice", queue="team", state=state,
        document=json.dumps(job_to_document(job)), checkpoint_dir="/tmp/x", workdir="",
        submit_time=float(index), start_time=start,
        end_time=None if start is None or run_s is None else start + run_s,
        attempt=1, restarts=0, reason="", reason_code="", cancel_requested=False,
        stop_reason="",
    )


def test_device_seconds_of_a_finished_job():
    assert device_seconds(_row(0, "succeeded", 50.0, devices=4)) == 200.0
    assert device_seconds(_row(1, "cancelled", None)) is None


def test_history_comes_from_succeeded_jobs_only(tmp_path):
    store = Store.open(database_url(tmp_path))
    try:
        with store.session() as session:
            for i in range(MIN_SAMPLES):
                session.add(_row(i, "succeeded", 3600.0))
            for i in range(MIN_SAMPLES, MIN_SAMPLES + 30):
                session.add(_row(i, "failed", 10.0))
        with store.session() as session:
            history = load_history(session)
    finally:
        store.close()
    assert history.samples["team"] == [7200.0] * MIN_SAMPLES
    classes = history.classes
    assert "team" in classes.per_queue
    # Every job needed two hours of device time: one that has had 100 minutes is served first.
    assert classes.level("team", 6000.0) < classes.level("team", 0.0)


def test_history_learns_the_series_named_in_job_specs(tmp_path):
    store = Store.open(database_url(tmp_path))
    try:
        with store.session() as session:
            for i in range(MIN_SAMPLES):
                session.add(_row(i, "succeeded", 3600.0 if i % 2 else 36_000.0))
            for i in range(MIN_SAMPLES, MIN_SAMPLES + 5):
                session.add(_row(i, "succeeded", 60.0, series="lr-sweep"))
        with store.session() as session:
            history = load_history(session)
    finally:
        store.close()
    assert history.series["team", "lr-sweep"].finished == [120.0] * 5
    classes = history.classes
    # The sweep's jobs took two device-minutes: its next member goes before an unknown job.
    assert classes.level("team", 0.0, "lr-sweep") < classes.level("team", 0.0)
