"""Arrays through a real server: the SDK's array view, cancelling one member and then the
whole array by its id, `suan jobs` showing the array on one line (expandable), the
dashboard's array and dependency columns, and a job that waits for the array to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import httpx
from control_helpers import server as server
from control_helpers import wait_for

ARRAY = textwrap.dedent(f"""\
    apiVersion: suan.ai/v1
    kind: Job
    metadata: {{name: sweep}}
    spec:
      array: "0-3%1"
      accelerators: {{count: 1, type: H100}}
      command: [{sys.executable}, -c, "import time; time.sleep(60)"]
    """)


def suan(server, *args: str) -> str:
    env = {**os.environ, "SUAN_SERVER": server.url, "SUAN_TOKEN": server.token}
    result = subprocess.run([sys.executable, "-m", "suan.cli.main", *args], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_cancel_one_member_then_the_whole_array_and_list_it_compactly(server, tmp_path):
    client = server.client()
    answer = client.submit_raw(ARRAY)
    ids = [job["id"] for job in answer["jobs"]]
    array_id = answer["jobs"][0]["array"]
    assert ids == [f"{array_id}-{index}" for index in range(4)]
    wait_for(lambda: client.describe(array_id)["states"] == {"running": 1, "pending": 3},
             what="one member running, the others throttled")
    view = client.describe(array_id)
    assert (view["count"], view["limit"], view["name"]) == (4, 1, "sweep")
    assert [m["array_index"] for m in view["members"]] == [0, 1, 2, 3]

    lines = suan(server, "jobs", "--no-header").splitlines()
    assert len(lines) == 1
    assert lines[0].split("\t")[:4] == [f"{array_id} [4]", "admin", "default",
                                        "1 running, 3 pending"]
    assert lines[0].split("\t")[-1] == f"array {array_id} runs at most 1 member at once"
    described = suan(server, "describe", array_id).splitlines()
    assert described[:2] == [
        f"{array_id}  array of 4, at most 1 at once  user admin  queue default",
        "states: 1 running, 3 pending"]
    assert described[3] == (f"  {ids[1]}  pending  array {array_id} runs at most 1 member "
                            "at once")
    assert f"array: {array_id}, member 2 of 4" in suan(server, "describe", ids[2])
    expanded = suan(server, "jobs", "--expand", "--no-header").splitlines()
    assert sorted(line.split("\t")[0] for line in expanded) == ids

    gather = tmp_path / "gather.yaml"
    gather.write_text(textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: gather}}
        spec:
          command: [{sys.executable}, -c, "pass"]
        """))
    after = suan(server, "submit", str(gather), "--dependency", f"afterany:{array_id}").strip()
    assert client.describe(after)["waits_for"][0] == {"kind": "afterany", "job": ids[0]}
    [notok] = client.submit(gather.read_text(), dependency=f"afternotok:{ids[1]}")
    assert client.describe(notok)["waits_for"] == [{"kind": "afternotok", "job": ids[1]}]
    with httpx.Client(base_url=server.url) as browser:
        browser.post("/ui/login", data={"token": server.token})
        page = browser.get("/ui/jobs").text
    assert f"<td>{array_id}[3]</td>" in page
    assert f"afterany:{array_id}-0, afterany:{array_id}-1" in page

    client.cancel(ids[2])
    wait_for(lambda: client.describe(ids[2])["state"] == "cancelled", what="member 2 cancelled")
    assert client.describe(array_id)["states"] == {"running": 1, "pending": 2, "cancelled": 1}
    asked = client.cancel(array_id)
    assert asked["array"] is True and sorted(asked["cancel_requested"]) == [ids[0], ids[1], ids[3]]
    wait_for(lambda: client.describe(array_id)["states"] == {"cancelled": 4},
             what="every member cancelled")
    wait_for(lambda: client.describe(after)["state"] == "succeeded", what="gather ran")
    wait_for(lambda: client.describe(notok)["state"] == "succeeded",  # cancelled is "not ok"
             what="the afternotok job ran")
    members = json.loads(suan(server, "jobs", array_id, "--json"))
    assert sorted(job["id"] for job in members) == ids
    assert {job["state"] for job in members} == {"cancelled"}
