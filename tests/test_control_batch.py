"""Dependencies and arrays through the real control plane (store, reconciler, local processes
on a simulated 8xH100 node): the pipeline an array of 4 -> a reduce job (afterok) runs to
completion; with one member failing, the reduce job is cancelled with its reason."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import select

from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.models import EventRow, JobRow
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node

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
