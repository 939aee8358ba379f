"""Recovery on the local engine, Slurm and Ray: a killed rank, a stopped (hung) rank and a slow
rank, each in a gang of examples/progress/train_loop.py driven by an in-process reconciler over
the session's engines. Bounds here are generous; bench/recovery.py measures the times."""

from __future__ import annotations

import re
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.models import EventRow, JobRow, ProgressRow
from suan.control.reconciler import LIVE, Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit

ROOT = Path(__file__).resolve().parents[1]
LOOP = ROOT / "examples" / "progress" / "train_loop.py"
DDP_LOOP = ROOT / "examples" / "progress" / "ddp_loop.py"
HANG = re.compile(r"^no progress for (\d+)s since step (\d+); restarting the gang$")


@pytest.fixture(params=["local", "slurm", "ray"])
def engine(request, engines_started):
    return engines_started(request.param)


@pytest.fixture
def control(engine, tmp_path):
    """(store, home) of a started reconciler over `engine`, stopped at the end."""
    home = tmp_path / "home"
    home.mkdir()
    config = ControlConfig(home=home, restart_backoff_s=0.5, stop_grace_s=5.0)
    store = Store.open(database_url(home))
    reconciler = Reconciler(store, engine.make_executor(home), config)
    reconciler.start()
    yield store, home
    with store.session() as session:
        for row in session.scalars(select(JobRow).where(JobRow.state.in_(LIVE))):
            row.cancel_requested = True
    reconciler.wake()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and live_jobs(store):
        time.sleep(0.2)
    reconciler.stop()


def live_jobs(store: Store) -> int:
    with store.session() as session:
        return len(session.scalars(select(JobRow.id).where(JobRow.state.in_(LIVE))).all())


def loop_job(name: str, env: dict[str, str], timeout: str = "", script: Path = LOOP) -> str:
    env = {"STEPS": "40", "STEP_S": "0.1", "PYTHONPATH": str(ROOT), **env}
    pairs = ", ".join(f'{key}: "{value}"' for key, value in env.items())
    health = f"\n  health: {{noProgressTimeout: {timeout}}}" if timeout else ""
    return textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          replicas: 2
          accelerators: {{count: 1, type: H100}}
          command: [{sys.executable}, {script}]
          env: {{{pairs}}}
          maxRestarts: 2""") + health + "\n"


def run(store: Store, home: Path, document: str, timeout: float = 180.0) -> tuple[JobRow, list]:
    """Submit `document`; once its job is final, the job and its events."""
    with store.session() as session:
        job_id = submit(session, Identity("admin", admin=True), document, None, home).jobs[0]["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.session() as session:
            row = session.get(JobRow, job_id)
            if row.state in ("succeeded", "failed", "cancelled"):
                query = select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.id)
                events = [(e.time, e.kind, e.message) for e in session.scalars(query)]
                session.expunge(row)
                return row, events
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is still {row.state} after {timeout}s")


def fault_time(row: JobRow) -> float:
    return float((Path(row.checkpoint_dir) / "fault").read_text())


def test_a_killed_rank_is_noticed_and_its_gang_runs_again(control):
    row, events = run(*control, loop_job("killed", {"FAULT": "kill", "FAULT_RANK": "1",
                                                    "FAULT_AT": "5"}))
    kinds = [kind for _, kind, _ in events]
    assert row.state == "succeeded" and row.restarts == 1, events
    failed = next(e for e in events if e[1] == "rank-failed")
    assert failed[2].startswith("rank 1 ") and failed[0] - fault_time(row) < 30, events
    assert kinds.count("running") == 2 and "hang" not in kinds and "straggler" not in kinds


def test_a_stopped_rank_is_restarted_after_the_no_progress_timeout(control):
    row, events = run(*control, loop_job("stopped", {"FAULT": "stop", "FAULT_RANK": "1",
                                                     "FAULT_AT": "5"}, timeout="3s"))
    assert row.state == "succeeded" and row.restarts == 1, events
    [(when, _, message)] = [e for e in events if e[1] == "hang"]
    quiet_s, step = (int(group) for group in HANG.match(message).groups())
    assert step == 5 and quiet_s >= 3
    assert 3 <= when - fault_time(row) < 30
    restarting = next(e for e in events if e[1] == "restarting")
    assert "rank 1 hung" in restarting[2]
    assert [kind for _, kind, _ in events].count("running") == 2


def test_a_slow_rank_is_flagged_once(control, engine):
    if engine.name != "local":
        pytest.skip("the straggler rule reads the same progress on every engine")
    row, events = run(*control, loop_job("slow", {"SLOW_RANK": "0", "SLOW_FROM": "5",
                                                  "STEP_S": "0.05"}))
    flags = [message for _, kind, message in events if kind == "straggler"]
    assert row.state == "succeeded" and len(flags) == 1, events
    assert re.fullmatch(r"rank 0 step time 0\.1\d*s is 2\.\d\dx the gang median 0\.05\d*s",
                        flags[0]), flags


def test_a_gang_blocked_in_a_collective_is_restarted(control, engine):
    if engine.name != "local":
        pytest.skip("the collective runs alike on every engine; the local one shows it")
    pytest.importorskip("torch")
    store, home = control
    row, events = run(store, home, loop_job(
        "collective", {"FAULT": "stop", "FAULT_RANK": "1", "FAULT_AT": "5", "STEPS": "20",
                       "OMP_NUM_THREADS": "1"}, timeout="5s", script=DDP_LOOP))
    assert row.state == "succeeded" and row.restarts == 1, events
    assert [kind for _, kind, _ in events].count("hang") == 1
    with store.session() as session:
        last = session.scalar(select(func.max(ProgressRow.step)).where(
            ProgressRow.job_id == row.id, ProgressRow.attempt == 1, ProgressRow.rank == 0))
    assert last is not None and last <= 6  # rank 0 waited in the all-reduce for rank 1
