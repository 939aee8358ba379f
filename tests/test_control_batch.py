"""Dependencies and arrays through the real control plane (store, reconciler, local processes
on a simulated 8xH100 node): the pipeline an array of 4 -> a reduce job (afterok) runs to
completion; with one member failing, the reduce job is cancelled with its reason."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.models import EventRow, JobRow
from suan.control.reconciler import Reconciler
from suan.control.redact import redact_jobs
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.control.views import job_summary
from suan.errors import SpecError
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node
from suan.goodput.store import job_goodput

ADMIN = Identity("admin", admin=True)
FINAL = ("succeeded", "failed", "cancelled")


def control_plane(home: Path) -> tuple[Store, Reconciler]:
    node, simulated = local_node("8xH100")
    config = ControlConfig(home=home, simulated=simulated, restart_backoff_s=0.1,
                           stop_grace_s=1.0)
    store = Store.open(database_url(home))
    return store, Reconciler(store, LocalExecutor(home, node=node), config)


def pipeline_yaml(out: Path, failing_index: int | None) -> str:
    """An array of 4 writing `<index> of <count>` to `out/<index>` (the member at
    `failing_index` exits 3), then a reduce job that joins them into `out/total`."""
    fail = -1 if failing_index is None else failing_index
    member = (
        "import os, sys; i = os.environ['SUAN_ARRAY_INDEX']; "
        f"open('{out}/' + i, 'w').write(i + ' of ' + os.environ['SUAN_ARRAY_COUNT'] + ' in ' "
        "+ os.environ['SUAN_ARRAY_ID']); "
        f"sys.exit(3 if int(i) == {fail} else 0)"
    )
    reduce = (
        f"import os; names = sorted(n for n in os.listdir('{out}') if n.isdigit()); "
        f"open('{out}/total', 'w').write(','.join(names))"
    )
    return textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: shard}}
        spec:
          array: "0-3"
          accelerators: {{count: 1, type: H100}}
          restartPolicy: never
          command: [{sys.executable}, -c, "{member}"]
        ---
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: reduce}}
        spec:
          dependencies: afterok:shard
          accelerators: {{count: 1, type: H100}}
          restartPolicy: never
          command: [{sys.executable}, -c, "{reduce}"]
        """)


def run_until_final(store: Store, reconciler: Reconciler, ids: list[str],
                    timeout: float = 60.0) -> dict[str, JobRow]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reconciler.tick()
        with store.session() as session:
            rows = {job_id: session.get(JobRow, job_id) for job_id in ids}
        if all(row.state in FINAL for row in rows.values()):
            return rows
        time.sleep(0.05)
    raise AssertionError({job_id: row.state for job_id, row in rows.items()})


def submit_text(store: Store, home: Path, text: str) -> list[dict[str, str]]:
    with store.session() as session:
        jobs = submit(session, ADMIN, text, None, home).jobs
        session.commit()
    return jobs


def test_an_array_of_four_then_its_reduce_job_run_to_completion(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "home").mkdir()
    store, reconciler = control_plane(tmp_path / "home")
    jobs = submit_text(store, tmp_path / "home", pipeline_yaml(out, None))
    members, reduce = jobs[:4], jobs[4]
    array_id = members[0]["array"]
    assert [m["id"] for m in members] == [f"{array_id}-{i}" for i in range(4)]

    reconciler.tick()
    with store.session() as session:
        waiting = session.get(JobRow, reduce["id"])
        assert waiting.state == "pending" and waiting.reason_code == "dependency"
        assert waiting.reason.startswith("waits for jobs ") and "to succeed" in waiting.reason

    rows = run_until_final(store, reconciler, [j["id"] for j in jobs])
    assert {row.state for row in rows.values()} == {"succeeded"}
    assert (out / "2").read_text() == f"2 of 4 in {array_id}"
    assert (out / "total").read_text() == "0,1,2,3"
    assert rows[reduce["id"]].start_time >= max(rows[m["id"]].end_time for m in members)
    with store.session() as session:  # its wait for the array is its owner's, not the queue's
        row = session.get(JobRow, reduce["id"])
        met = session.scalar(select(EventRow.time).where(
            EventRow.job_id == row.id, EventRow.kind == "dependencies-met"))
        waited = job_goodput(session, row, time.time())["breakdown"]
    assert met >= max(rows[m["id"]].end_time for m in members)
    assert waited["user_wait"] == pytest.approx(met - row.submit_time)


def test_a_failing_member_cancels_the_reduce_job_with_its_reason(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "home").mkdir()
    store, reconciler = control_plane(tmp_path / "home")
    jobs = submit_text(store, tmp_path / "home", pipeline_yaml(out, failing_index=1))
    rows = run_until_final(store, reconciler, [j["id"] for j in jobs])
    failed = jobs[1]["id"]
    assert rows[failed].state == "failed"
    assert [rows[j["id"]].state for j in jobs[:4]].count("succeeded") == 3
    reduce = rows[jobs[4]["id"]]
    assert reduce.state == "cancelled" and reduce.attempt == 0
    assert reduce.reason == (f"its dependency can never be met: job {failed} failed "
                             "(afterok: it had to succeed)")
    assert not (out / "total").exists()
    with store.session() as session:
        kinds = session.scalars(select(EventRow.kind).where(EventRow.job_id == reduce.id))
        assert list(kinds) == ["submitted", "cancelled"]


def one_job(name: str, code: str, extra: str = "") -> str:
    """A Job of one rank on one H100 running the Python `code`."""
    return textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          accelerators: {{count: 1, type: H100}}
          restartPolicy: never
          command: [{sys.executable}, -c, "{code}"]
        """) + textwrap.indent(extra, "  ")


@pytest.mark.parametrize(
    ("kind", "target_code", "dependent"),
    [
        ("afterok", 0, "succeeded"),
        ("afterok", 3, "cancelled"),
        ("afternotok", 3, "succeeded"),
        ("afternotok", 0, "cancelled"),
        ("afterany", 0, "succeeded"),
        ("afterany", 3, "succeeded"),
    ],
)
def test_each_kind_of_dependency_runs_or_cancels_the_dependent_job(
    tmp_path, kind, target_code, dependent
):
    home = tmp_path / "home"
    home.mkdir()
    store, reconciler = control_plane(home)
    [target] = submit_text(store, home, one_job("first", f"import sys; sys.exit({target_code})"))
    [then] = submit_text(store, home, one_job("then", "pass", f"dependencies: {kind}:first\n"))
    rows = run_until_final(store, reconciler, [target["id"], then["id"]])
    assert rows[target["id"]].state == ("succeeded" if target_code == 0 else "failed")
    assert rows[then["id"]].state == dependent
    if dependent == "succeeded":
        assert rows[then["id"]].start_time >= rows[target["id"]].end_time
    else:
        assert rows[then["id"]].attempt == 0
        assert rows[then["id"]].reason.startswith("its dependency can never be met: job ")


def test_after_starts_the_dependent_job_while_its_target_still_runs(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    store, reconciler = control_plane(home)
    [target] = submit_text(store, home, one_job("long", "import time; time.sleep(30)"))
    then_yaml = one_job("then", "pass", f"dependencies: after:{target['id']}\n")
    [then] = submit_text(store, home, then_yaml)
    reconciler.tick()
    with store.session() as session:
        assert session.get(JobRow, then["id"]).reason == f"waits for job {target['id']} to start"
    rows = run_until_final(store, reconciler, [then["id"]])
    assert rows[then["id"]].state == "succeeded"
    with store.session() as session:
        assert session.get(JobRow, target["id"]).state == "running"
        session.get(JobRow, target["id"]).cancel_requested = True
        session.commit()
    assert run_until_final(store, reconciler, [target["id"]])[target["id"]].state == "cancelled"


def test_a_throttled_array_never_runs_more_members_than_its_limit(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    store, reconciler = control_plane(home)
    jobs = submit_text(store, home, one_job("wide", "import time; time.sleep(0.5)",
                                            'array: "0-10:2%2"\n'))
    ids = [job["id"] for job in jobs]
    assert [job["id"].rsplit("-", 1)[1] for job in jobs] == ["0", "2", "4", "6", "8", "10"]
    most, limited = 0, set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reconciler.tick()
        with store.session() as session:
            rows = [session.get(JobRow, job_id) for job_id in ids]
        most = max(most, sum(row.state in ("scheduled", "running") for row in rows))
        limited |= {row.id for row in rows if row.reason_code == "array-limit"}
        if all(row.state == "succeeded" for row in rows):
            break
        time.sleep(0.05)
    assert most == 2  # 8 devices free: only the throttle holds the others back
    assert limited and all(row.state == "succeeded" for row in rows)
    assert rows[-1].reason != "" and rows[0].array_count == 6


def test_a_job_of_another_user_is_a_dependency_only_for_those_who_may_view_it(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    store, _ = control_plane(home)
    queue = textwrap.dedent("""\
        apiVersion: suan.ai/v1
        kind: Queue
        metadata: {name: team}
        spec: {viewers: [vic]}
        """)
    submit_text(store, home, queue)
    with store.session() as session:
        [bobs] = submit(session, Identity("bob"), one_job("prep", "pass", "queue: team\n"),
                        None, home).jobs
        session.commit()
    for user, allowed in (("mallory", False), ("vic", True)):
        wanted = one_job("mine", "pass", f"dependencies: afterok:{bobs['id']}\n")
        with store.session() as session:
            if allowed:
                [job] = submit(session, Identity(user), wanted, None, home).jobs
                assert session.get(JobRow, job["id"]).waits_for == f'[["afterok", "{bobs["id"]}"]]'
                continue
            with pytest.raises(SpecError) as refused:
                submit(session, Identity(user), wanted, None, home)
        [problem] = refused.value.problems
        assert problem.path == "documents[0].spec.dependencies"
        assert problem.message == f"no job, array or job name {bobs['id']!r} that you may see"
    by_name = one_job("x", "pass", "dependencies: afterok:prep\n")
    with store.session() as session, pytest.raises(SpecError):  # names: one's own jobs only
        submit(session, Identity("vic"), by_name, None, home)


def test_the_jobs_waited_for_are_named_only_to_those_who_may_see_them(tmp_path):
    """vic's job (queue `shared`, which mallory views) waits for bob's array (queue `team`,
    which vic views and mallory does not): mallory reads `another job` for each member."""
    home = tmp_path / "home"
    home.mkdir()
    store, reconciler = control_plane(home)
    submit_text(store, home, textwrap.dedent("""\
        apiVersion: suan.ai/v1
        kind: Queue
        metadata: {name: team}
        spec: {viewers: [vic]}
        ---
        apiVersion: suan.ai/v1
        kind: Queue
        metadata: {name: shared}
        spec: {viewers: [mallory]}
        """))
    with store.session() as session:
        members = submit(session, Identity("bob"), one_job(
            "prep", "import time; time.sleep(30)", 'queue: team\narray: "0-1"\n'), None,
            home).jobs
        array_id = members[0]["array"]
        [vics] = submit(session, Identity("vic"), one_job(
            "mine", "pass", f"queue: shared\ndependencies: afterok:{array_id}\n"), None,
            home).jobs
        session.commit()
    reconciler.tick()
    with store.session() as session:
        row = session.get(JobRow, vics["id"])
        for reader, named in (("vic", [m["id"] for m in members]),
                              ("mallory", ["another job", "another job"])):
            view = job_summary(row)
            redact_jobs(session, Identity(reader), [view])
            assert [wait["job"] for wait in view["waits_for"]] == named
            assert view["reason"] == f"waits for jobs {named[0]}, {named[1]} to succeed"
        for member in members:
            session.get(JobRow, member["id"]).cancel_requested = True
        session.commit()
    run_until_final(store, reconciler, [m["id"] for m in members] + [vics["id"]])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("array", '"5-1"', "'5-1' is empty (the end is before the start, or the step is 0)"),
        ("array", '"0-9%0"', "the throttle '0' after '%' is not a whole number >= 1"),
        ("dependencies", "afterwards:x", "unknown dependency kind 'afterwards'"),
        ("dependencies", "afterok:a?afterany:b",
         "'?' (any one of) is not supported: every dependency must hold"),
    ],
)
def test_a_bad_array_or_dependency_is_refused_naming_the_field(tmp_path, field, value, message):
    home = tmp_path / "home"
    home.mkdir()
    store, _ = control_plane(home)
    with store.session() as session, pytest.raises(SpecError) as refused:
        submit(session, ADMIN, one_job("bad", "pass", f"{field}: {value}\n"), None, home)
    [problem] = refused.value.problems
    assert (problem.path.rsplit(".", 1)[-1], problem.message) == (field, message)
