"""The control plane learns service classes from the jobs that succeeded in its store, counting
every run, with its live jobs that have run as censored needs."""

from __future__ import annotations

import json

from suan.control.models import JobRow
from suan.control.service import device_seconds, end_run, load_history
from suan.control.store import Store, database_url
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.spec import job_to_document
from suan.sched.service import MIN_SAMPLES


def _row(index: int, state: str, run_s: float | None, devices: int = 2,
         series: str = "", attained_s: float = 0.0) -> JobRow:
    job = Job(f"j{index}", (ReplicaGroup(replicas=1, accelerators=devices),), series=series)
    start = None if run_s is None else 100.0 + index
    return JobRow(
        id=f"j-{index}", name="j", user="alice", queue="team", state=state,
        document=json.dumps(job_to_document(job)), checkpoint_dir="/tmp/x", workdir="",
        submit_time=float(index), start_time=start,
        end_time=None if start is None or run_s is None else start + run_s,
        attempt=1, restarts=0, reason="", reason_code="", cancel_requested=False,
        stop_reason="", attained_s=attained_s,
    )


def test_device_seconds_of_a_finished_job():
    assert device_seconds(_row(0, "succeeded", 50.0, devices=4)) == 200.0
    assert device_seconds(_row(1, "cancelled", None)) is None


def test_a_job_attains_the_service_of_every_run():
    row = _row(0, "running", None, devices=4)
    row.start_time = 100.0
    end_run(row, 150.0)  # preempted after 50 s
    row.start_time = 400.0
    end_run(row, 430.0)  # succeeded after 30 s more
    row.end_time = 430.0
    assert row.attained_s == 4 * 80.0
    assert device_seconds(row) == 4 * 80.0  # not the last run's 120


def test_live_jobs_that_have_run_are_censored_needs(tmp_path):
    store = Store.open(database_url(tmp_path))
    try:
        with store.session() as session:
            for i in range(MIN_SAMPLES):
                session.add(_row(i, "succeeded", 600.0))
            running = _row(MIN_SAMPLES, "running", None, devices=2, attained_s=1000.0)
            running.start_time = 0.0
            session.add(running)
            session.add(_row(MIN_SAMPLES + 1, "preempted", None, attained_s=30_000.0))
            session.add(_row(MIN_SAMPLES + 2, "pending", None))
        with store.session() as session:
            without = load_history(session)
            censored = load_history(session, now=500.0)
    finally:
        store.close()
    needs, mass = censored.distributions["team"]
    # the running job has 1,000 + 2 x 500 device-seconds, the preempted one 30,000: both
    # need more, and keep the mass beyond the finished jobs' 1,200
    assert needs.max() == 30_000.0 and mass[-1] > 0
    assert without.distributions["team"][0].max() == 1200.0


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
