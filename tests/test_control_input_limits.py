"""What can never run as written is refused at submit with a 422 naming the field, and no
input is a 500: NUL and surrogates, empty commands, arguments over execve's limits, absurd
numbers, YAML nested too deep or blown up by aliases, files over the size limit, log offsets
past any file. Through the app in-process (no reconciler), and one real server for logs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_helpers import server as server
from control_helpers import wait_for

with warnings.catch_warnings():  # starlette's note about httpx2 is not ours to act on
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from suan.control.api import MAX_LOG_OFFSET
from suan.control.server import ServerOptions, build
from suan.jobs._spec_models import ARGS_TOTAL_BYTES, MAX_ARG_BYTES
from suan.jobs.spec import MAX_SPEC_BYTES, MAX_YAML_DEPTH


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    home = tmp_path_factory.mktemp("limits")
    app, _reconciler, store = build(ServerOptions(home=home, devices="8xH100"))
    client = TestClient(app, raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {(home / 'admin-token').read_text().strip()}"
    yield client
    store.close()


def job(name: str = "limits", **spec: Any) -> dict[str, Any]:
    """A Job document that runs `python train.py`, with `spec` on top."""
    body = {"command": ["python", "train.py"], **spec}
    return {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": name}, "spec": body}


def problems(response) -> dict[str, dict[str, Any]]:
    """The 422's problems by spec path (or by `loc` for the request's own fields)."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    return {
        item["path"] if "path" in item else ".".join(map(str, item["loc"])): item
        for item in detail
    }


def submit(api: TestClient, document: Any, workdir: str | None = "/tmp"):
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    return api.post("/v1/jobs", json={"yaml": text, "workdir": workdir})


def test_a_plain_job_is_accepted(api):
    assert submit(api, job()).status_code == 201


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        (job(command=["python", "a\x00b"]), "spec.command.1", "NUL"),
        (job(command=["python", "\ud800"]), "spec.command.1", "surrogate"),
        (job(env={"A": "b\x00c"}), "spec.env.A", "NUL"),
        (job(env={"A": "\udfff"}), "spec.env.A", "surrogate"),
        (job(env={"A\x00B": "c"}), "spec.env.A\\x00B", "NUL"),
        (job(name="a\x00b"), "metadata.name", "NUL"),
        (job(queue="team\x00"), "spec.queue", "NUL"),
        (job(checkpoint={"dir": "/tmp/\ud800"}), "spec.checkpoint.dir", "surrogate"),
        (job(command=[]), "spec.command", "empty"),
        (job(command=[""]), "spec.command.0", "no program"),
        (job(command=["  ", "train.py"]), "spec.command.0", "no program"),
        (job(command=["python", "x" * (MAX_ARG_BYTES + 1)]), "spec.command.1", "bytes"),
        (job(env={"BIG": "y" * MAX_ARG_BYTES}), "spec.env.BIG", "bytes"),
        (job(maxRestarts=10**30), "spec.maxRestarts", "out of range"),
        (job(maxRestarts=1e30), "spec.maxRestarts", "expected an integer"),
        (job(maxRestarts=2.5), "spec.maxRestarts", "expected an integer"),
        (job(maxRestarts=-1), "spec.maxRestarts", "out of range"),
        (job(maxRestarts=1001), "spec.maxRestarts", "out of range"),
        (job(runtimeEstimate="100000000000000000000h"), "spec.runtimeEstimate", "a year"),
        (job(runtimeEstimate=10**23), "spec.runtimeEstimate", "a year"),
        (job(runtimeEstimate="366d"), "spec.runtimeEstimate", "a year"),
        (job(checkpoint={"interval": "9000000h"}), "spec.checkpoint.interval", "a year"),
        (job(checkpoint={"intervalSeconds": 1e20}), "spec.checkpoint.intervalSeconds", "range"),
        (job(replicas=10**20), "spec.replicas", "out of range"),
        (job(replicas=-2), "spec.replicas", "out of range"),
        (job(replicas=2.0), "spec.replicas", "expected an integer"),
        (job(replicas=4, elastic={"minReplicas": -1}), "spec.elastic.minReplicas", "range"),
        (job(accelerators={"count": 1.5}), "spec.accelerators.count", "expected an integer"),
        (job(accelerators={"count": -8}), "spec.accelerators.count", "out of range"),
    ],
)
def test_what_can_never_run_is_refused_naming_the_field(api, document, path, words):
    found = problems(submit(api, document))
    assert f"documents[0].{path}" in found, found
    problem = found[f"documents[0].{path}"]
    assert words in problem["msg"], problem
    assert problem["loc"][:3] == ["body", "yaml", "documents[0]"]


def test_command_and_environment_over_what_execve_takes_are_refused(api):
    arg = "z" * 100_000
    count = ARGS_TOTAL_BYTES // len(arg) + 1
    head = (
        "apiVersion: suan.ai/v1\nkind: Job\n"
        f"metadata: {{name: huge-argv, annotations: {{blob: &blob {arg}}}}}\nspec:\n"
    )
    long_command = head + "  command: [python" + ", *blob" * count + "]\n"
    problem = problems(submit(api, long_command))["documents[0].spec.command"]
    assert "more than a process may be started with" in problem["msg"]
    assert f"{ARGS_TOTAL_BYTES:,}" in problem["allowed"]
    variables = ", ".join(f"V{index}: *blob" for index in range(count))
    large_env = head + f"  command: [python]\n  env: {{{variables}}}\n"
    assert "documents[0].spec.env" in problems(submit(api, large_env))
    fits = head + "  command: [python, *blob]\n  env: {V: *blob}\n"
    assert submit(api, fits).status_code == 201


@pytest.mark.parametrize("workdir", ["/tmp/a\x00b", "/tmp/\ud800"])
def test_a_workdir_with_nul_or_a_surrogate_is_refused(api, workdir):
    body = json.dumps({"yaml": yaml.safe_dump(job()), "workdir": workdir})
    response = api.post(
        "/v1/jobs", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert "body.workdir" in problems(response)
    response.content.decode("ascii")  # the echoed input is escaped, not invalid UTF-8


def test_a_surrogate_anywhere_in_the_body_is_a_422_never_a_500(api):
    for path, body in [
        ("/v1/users", '{"name": "\\ud800"}'),
        ("/v1/jobs", '{"yaml": "\\udc00", "workdir": "/tmp"}'),
        ("/v1/jobs", '{"yaml": "a: \\"\\\\ud800\\"", "workdir": "/tmp"}'),
    ]:
        response = api.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, body, response.text)
        response.content.decode("ascii")


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000,
        "a: " + "{b: " * 3000 + "c" + "}" * 3000,
        "".join(" " * level + "k:\n" for level in range(1000)),
        "".join(" " * level + "-\n" for level in range(1000)) + " " * 1000 + "deep\n",
    ],
    ids=["flow-lists", "flow-mappings", "block-mappings", "block-lists"],
)
def test_yaml_nested_thousands_deep_is_refused_before_it_recurses(api, text):
    found = problems(submit(api, text))
    [(path, problem)] = found.items()
    assert path.startswith("line ")
    assert f"more than {MAX_YAML_DEPTH} levels" in problem["msg"]


def test_aliases_that_nest_deeper_than_the_limit_are_refused(api):
    lines = ["a0: &a0 [x]"]
    lines += [f"a{i}: &a{i} " + "[" * 20 + f"*a{i - 1}" + "]" * 20 for i in range(1, 6)]
    found = problems(submit(api, "\n".join(lines)))
    assert any(f"more than {MAX_YAML_DEPTH} levels" in p["msg"] for p in found.values())


def test_a_billion_laughs_is_refused_without_expanding_it(api):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    bomb = "\n".join(lines)
    inside_a_job = (
        "apiVersion: suan.ai/v1\nkind: Job\nmetadata: {name: lol}\n"
        "spec:\n  command: [python, train.py]\n  env: {A: b}\n" + "  " + bomb.replace("\n", "\n  ")
    )
    for text in (bomb, inside_a_job):
        found = problems(submit(api, text))
        messages = [problem["msg"] for problem in found.values()]
        assert any("aliases are expanded" in message for message in messages), found


def test_a_key_written_twice_is_named_at_its_path_and_line(api):
    text = yaml.safe_dump(job(), sort_keys=False) + "---\n" + yaml.safe_dump(
        job("second"), sort_keys=False
    ).replace("spec:\n", "spec:\n  queue: a\n  queue: b\n")
    problem = problems(submit(api, text))["documents[1].spec.queue"]
    assert problem["msg"] == "duplicate key 'queue' (line 16)"
    assert problem["loc"] == ["body", "yaml", "documents[1]", "spec", "queue"]
    assert problem["allowed"] == "each key once in a mapping"


def test_files_over_the_size_limit_are_refused(api):
    too_long = "# " + "x" * MAX_SPEC_BYTES
    assert "body.yaml" in problems(submit(api, too_long))
    wide = "# " + "é" * (MAX_SPEC_BYTES // 2 + 10) + "\n" + yaml.safe_dump(job())
    assert len(wide) <= MAX_SPEC_BYTES < len(wide.encode())
    problem = problems(submit(api, wide))[""]
    assert "bytes" in problem["msg"] and f"{MAX_SPEC_BYTES:,}" in problem["allowed"]


@pytest.mark.parametrize(
    "query",
    ["offset=9223372036854775808", "offset=18446744073709551616", f"offset={MAX_LOG_OFFSET + 1}",
     "offset=-1", "limit=0", "limit=999999999999", "rank=-1", "rank=99999999999999999999"],
)
def test_log_queries_out_of_range_are_422_naming_the_parameter(api, query):
    [job_id] = [j["id"] for j in submit(api, job(name="logs-q")).json()["jobs"]]
    response = api.get(f"/v1/jobs/{job_id}/logs?{query}")
    name = query.split("=")[0]
    assert f"query.{name}" in problems(response)


def test_a_log_read_from_past_its_end_is_empty_not_a_500(server):
    with server.client() as client:
        [job_id] = client.submit(
            yaml.safe_dump(job(name="short-log", command=["python", "-c", "print('hello')"])),
            workdir=str(Path.cwd()),
        )
        wait_for(lambda: client.describe(job_id)["state"] == "succeeded", timeout=60,
                 what="the job to finish")
        assert "hello" in client.logs(job_id)["data"]
        far = client.logs(job_id, offset=MAX_LOG_OFFSET)
        assert far["data"] == "" and far["next_offset"] == MAX_LOG_OFFSET
        with pytest.raises(Exception) as refused:
            client.logs(job_id, offset=2**63)
        assert getattr(refused.value, "status", None) == 422
