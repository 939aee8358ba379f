"""The control plane with a long queue, in-process: a tick writes only the reasons that changed
and starts the jobs the scheduler picked; a rank's exit wakes the reconciler at once; SQLite
writers of one process queue on a lock that every way out of a transaction releases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, select

from suan.control.auth import Identity, create_user
from suan.control.config import ControlConfig
from suan.control.models import JobRow, UserRow
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node

ADMIN = Identity("admin", admin=True)


def job(name: str, ranks: int = 1, command: str = "['true']") -> str:
    return (
        f"apiVersion: suan.ai/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n"
        f"  replicas: {ranks}\n  accelerators: {{count: 1, type: H100}}\n"
        f"  command: {command}\n"
    )


def control_plane(home: Path, tick_s: float = 0.25) -> tuple[Store, Reconciler]:
    node, simulated = local_node("8xH100")
    config = ControlConfig(home=home, simulated=simulated, tick_s=tick_s, stop_grace_s=1.0)
    store = Store.open(database_url(home))
    return store, Reconciler(store, LocalExecutor(home, node=node), config)


def submitted(store: Store, home: Path, text: str) -> list[str]:
    with store.session() as session:
        return [j["id"] for j in submit(session, ADMIN, text, None, home).jobs]


def states(store: Store) -> dict[str, tuple[str, str]]:
    with store.session() as session:
        return {r.id: (r.state, r.reason) for r in session.scalars(select(JobRow))}


def test_a_tick_writes_only_changed_reasons_and_starts_the_oldest_jobs(tmp_path):
    store, reconciler = control_plane(tmp_path)
    [blocker] = submitted(store, tmp_path, job("blocker", ranks=8, command="[sleep, '60']"))
    reconciler.tick()
    queue = submitted(store, tmp_path, "---\n".join(job(f"q{i}") for i in range(120)))
    updates: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda _c, _k, sql, *_: updates.append(sql) if sql.startswith("UPDATE") else None)
    try:
        reconciler.tick()
        first = [sql for sql in updates if sql.startswith("UPDATE jobs")]
        found = states(store)
        pending = reconciler.last_decisions.pending
        assert {wait.job for wait in pending} == set(queue)
        assert all(found[w.job] == ("pending", w.reason) for w in pending)
        assert all(found[j][1] != "waiting for the scheduler" for j in queue)
        assert first, "the new jobs' reasons were written"
        updates.clear()
        reconciler.tick()
        assert not [sql for sql in updates if sql.startswith("UPDATE jobs")], "nothing changed"
        with store.session() as session:
            session.get(JobRow, blocker).cancel_requested = True
        deadline = time.monotonic() + 30
        while sum(s == "running" for s, _ in states(store).values()) < 8:
            assert time.monotonic() < deadline, states(store)
            reconciler.tick()
            time.sleep(0.05)
        with store.session() as session:
            started = session.scalars(
                select(JobRow.id).where(JobRow.attempt > 0, JobRow.id != blocker)
            ).all()
        assert queue[:8] == sorted(started, key=queue.index), "the oldest jobs started first"
    finally:
        reconciler.executor.stop(blocker, 0.1)
        for job_id in reconciler.executor.tracked():
            reconciler.executor.stop(job_id, 0.1)


def test_a_rank_exit_wakes_the_reconciler_before_its_next_period(tmp_path):
    store, reconciler = control_plane(tmp_path, tick_s=60.0)
    reconciler.start()
    try:
        [job_id] = submitted(store, tmp_path, job("quick"))
        reconciler.wake()
        deadline = time.monotonic() + 20
        while states(store)[job_id][0] != "succeeded":
            assert time.monotonic() < deadline, f"still {states(store)[job_id]} (period 60 s)"
            time.sleep(0.05)
    finally:
        reconciler.stop()
        store.close()


def test_sqlite_writers_queue_and_every_way_out_of_a_transaction_frees_the_next(tmp_path):
    store = Store.open(database_url(tmp_path))
    gave_up: list[str] = []  # writes that waited out the lock instead of getting it

    def got_the_lock(conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if conn.info.get("writing") is False:
            gave_up.append(statement)

    event.listen(store.engine, "before_cursor_execute", got_the_lock)
    with pytest.raises(RuntimeError), store.session() as session:
        create_user(session, "rolled-back")
        session.flush()
        raise RuntimeError("the request failed")
    abandoned = store.plain_session()
    create_user(abandoned, "never-committed")
    abandoned.flush()
    abandoned.close()
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for round_ in range(10):
                with store.session() as session:
                    create_user(session, f"u{index}-{round_}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert not gave_up, "a writer waited out the lock of a finished one"
    with store.session() as session:
        names = set(session.scalars(select(UserRow.name)))
    assert len(names) == 120 and not names & {"rolled-back", "never-committed"}
    store.close()
