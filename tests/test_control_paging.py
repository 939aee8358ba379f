"""Job lists in pages: the cursor of `GET /v1/jobs` (store level, on SQLite and PostgreSQL),
pages while jobs arrive and bad tokens through a real server, and `suan jobs` with --limit,
--page and --all-pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from control_helpers import server  # noqa: F401 - the fixture
from sqlalchemy import insert, select
from test_control_store import empty_url, store  # noqa: F401 - the fixtures

from suan.control.models import JobRow
from suan.control.paging import BadCursor, Cursor, job_page

PENDING_FOREVER = """\
apiVersion: suan.ai/v1
kind: Job
metadata: {{name: {name}}}
spec:
  replicas: 2
  accelerators: {{count: 8, type: H100}}
  command: ['true']
"""
"""A job that needs two 8-device nodes: it waits on the one-node test server for good."""


def _rows(count: int, submit_time: float) -> list[dict]:
    return [
        dict(id=f"j-{i:03d}", name="j", user="admin", queue="default", state="pending",
             document="{}", checkpoint_dir="/x", workdir="", submit_time=submit_time,
             attempt=0, restarts=0, reason="", reason_code="", cancel_requested=False,
             stop_reason="")
        for i in range(count)
    ]


def test_pages_cover_jobs_of_one_submit_time_exactly_once(store):  # noqa: F811
    with store.session() as session:
        session.execute(insert(JobRow), _rows(10, 1700000000.125))
        session.execute(insert(JobRow), [dict(r, id=f"k-{r['id']}", submit_time=1.5)
                                         for r in _rows(2, 0)])
    seen, remaining, after = [], [], None
    with store.session() as session:
        while True:
            page = job_page(session, select(JobRow), 3, after)
            seen += [row.id for row in page.rows]
            remaining.append(page.remaining)
            after = page.next
            if after is None:
                break
    assert seen == [f"j-{i:03d}" for i in range(9, -1, -1)] + ["k-j-001", "k-j-000"]
    assert remaining == [9, 6, 3, 0]


def test_a_page_token_survives_a_round_trip_and_nonsense_is_refused():
    cursor = Cursor(1700000000.1234567, "train-abc123")
    assert Cursor.parse(cursor.token()) == cursor
    for token in ("nonsense", Cursor(1.0, "x").token()[:-2], "WzEsMl0", "WyJ4IiwieSJd"):
        with pytest.raises(BadCursor):
            Cursor.parse(token)


def _submit(client, names: list[str]) -> list[str]:
    text = "---\n".join(PENDING_FOREVER.format(name=name) for name in names)
    return [job["id"] for job in client.submit_raw(text)["jobs"]]


def test_pages_while_jobs_arrive_list_each_job_once(server):  # noqa: F811
    client = server.client()
    first = _submit(client, [f"a{i}" for i in range(11)])
    listed, remaining, after, arrived = [], [], None, []
    while True:
        page = client.jobs_page(limit=4, after=after)
        listed += [job["id"] for job in page["jobs"]]
        remaining.append(page["remaining"])
        arrived += _submit(client, [f"late{len(arrived)}"])
        after = page["next"]
        if after is None:
            break
    assert sorted(listed) == sorted(first) and len(listed) == len(set(listed))
    assert remaining == [7, 3, 0]
    everything = [job["id"] for job in client.iter_jobs(page_size=5)]
    assert everything[: len(arrived)] == arrived[::-1], "newest first"
    assert sorted(everything) == sorted(first + arrived)
    # the same jobs in the same order (their reasons may change between the two reads)
    assert [j["id"] for j in client.jobs()] == [j["id"] for j in client.iter_jobs(page_size=3)]


def test_a_bad_page_token_is_a_422_naming_the_parameter(server):  # noqa: F811
    import httpx

    with httpx.Client(base_url=server.url,
                      headers={"Authorization": f"Bearer {server.token}"}) as raw:
        for token in ("nonsense", "WzEsMl0", "x" * 600):
            answer = raw.get("/v1/jobs", params={"after": token})
            assert answer.status_code == 422, answer.text
            assert answer.json()["detail"][0]["loc"] == ["query", "after"]


def test_suan_jobs_shows_a_page_and_says_how_many_more(server):  # noqa: F811
    ids = [_submit(server.client(), [f"c{i}"])[0] for i in range(7)]
    env = {k: v for k, v in os.environ.items() if k not in ("SUAN_HOME",)}
    env.update(SUAN_SERVER=server.url, SUAN_TOKEN=server.token)

    def suan(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "suan.cli.main", "jobs", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=True)

    shown = suan("--limit", "5", "--json")
    assert [job["id"] for job in json.loads(shown.stdout)] == ids[::-1][:5]
    assert "2 more: `suan jobs --limit 5 --page " in shown.stderr
    token = shown.stderr.split("--page ")[1].split("`")[0]
    rest = suan("--limit", "5", "--page", token, "--json")
    assert [job["id"] for job in json.loads(rest.stdout)] == ids[::-1][5:]
    assert rest.stderr == ""
    table = suan("--limit", "5")
    assert "2 more:" in table.stderr and sum(i in table.stdout for i in ids) == 5
    every = suan("--all-pages", "--limit", "2")
    assert all(i in every.stdout for i in ids) and "more:" not in every.stdout


def test_pages_of_several_states_merge_in_order_and_leave_out_the_others(store):  # noqa: F811
    cycle = ("pending", "running", "succeeded")
    rows = [dict(r, state=cycle[i % 3], submit_time=float(i // 2))
            for i, r in enumerate(_rows(30, 0))]
    with store.session() as session:
        session.execute(insert(JobRow), rows)
    live = [r for r in rows if r["state"] != "succeeded"]
    expected = [r["id"] for r in sorted(live, key=lambda r: (r["submit_time"], r["id"]),
                                        reverse=True)]
    seen, remaining, after = [], [], None
    with store.session() as session:
        while True:
            page = job_page(session, select(JobRow), 7, after, ("pending", "running"))
            seen += [row.id for row in page.rows]
            remaining.append(page.remaining)
            after = page.next
            if after is None:
                break
    assert seen == expected
    assert remaining == [13, 6, 0]
