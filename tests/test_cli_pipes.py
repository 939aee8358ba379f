"""The `suan` command in a pipe: the real command in a subprocess with stdout piped, as
`suan jobs | grep` runs it. One line per row with whole ids, server-side filters, outputs
that parse as JSON and YAML, --version, completion, error text printed as it is, `suan up`
refusing a port another server holds, and files that cannot be read."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path

import httpx
import pytest
import yaml
from control_helpers import Server, job_yaml, wait_for
from control_helpers import server as server

from suan.client import Client, is_spec_path
from suan.errors import SuanError

QUEUE = textwrap.dedent("""\
    apiVersion: suan.ai/v1
    kind: Queue
    metadata: {name: team-b}
    spec:
      guaranteed: {accelerators: 8}
    """)
LONG = "a-job-name-long-enough-that-a-table-of-80-columns-wraps"
BAD_COMMAND = textwrap.dedent("""\
    apiVersion: suan.ai/v1
    kind: Job
    metadata: {name: bad}
    spec:
      replicas: 1
      accelerators: {count: 1, type: H100}
      command: []
    """)


def run_suan(*args: str, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """`suan ARGS` with stdout and stderr piped (never a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "suan.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


def as_user(server: Server, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SUAN_HOME"}
    return dict(env, SUAN_SERVER=server.url, SUAN_TOKEN=token)


@pytest.fixture
def busy(server):
    """A server with a finished job (admin), a running one (team-b, dana) and a pending one
    (default, admin), all with long names; the ids and the admin's environment."""
    admin = server.client()
    admin.submit_raw(QUEUE)
    [done] = admin.submit(job_yaml(LONG + "-1", ranks=1, steps=1))
    wait_for(lambda: admin.describe(done)["state"] == "succeeded", what="the job to finish")
    dana = server.client(admin.create_user("dana"))
    [running] = dana.submit(job_yaml(LONG, ranks=2, devices=4, steps=3000, queue="team-b"))
    wait_for(lambda: dana.describe(running)["state"] == "running", what="running")
    [pending] = admin.submit(job_yaml(LONG + "-2", ranks=2, devices=4, steps=3000,
                                      preemptible=False))
    ids = {"running": running, "pending": pending, "succeeded": done}
    return ids, as_user(server, server.token)


def shape(value: object) -> object:
    """The keys and lengths of a JSON value, not its figures (goodput and ages move on)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def rows_of(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines()]


def test_jobs_in_a_pipe_are_one_line_each_with_whole_ids_under_a_header(busy):
    ids, env = busy
    shown = run_suan("jobs", "--all", env=env)
    assert shown.returncode == 0, shown.stderr
    header, *rows = rows_of(shown.stdout)
    assert header == ["ID", "USER", "QUEUE", "STATE", "RANKS", "AGE", "RESTARTS", "REASON"]
    assert sorted(row[0] for row in rows) == sorted(ids.values())
    assert all(len(row) == len(header) for row in rows)
    assert len(ids["running"]) > 60 and all(len(row[0]) > 60 for row in rows)
    bare = run_suan("jobs", "--all", "--no-header", env=env)
    assert [row[:5] for row in rows_of(bare.stdout)] == [row[:5] for row in rows]
    wide = rows_of(run_suan("jobs", "--all", "-o", "wide", env=env).stdout)
    assert {"DEVICES", "PRIORITY", "SUBMITTED", "EXIT"} <= set(wide[0])
    assert wide[0][0] == "ID" and len(wide) == len(rows) + 1


def test_jobs_filters_by_user_queue_and_state_on_the_server(server, busy):
    ids, env = busy

    def listed(*args: str) -> set[str]:
        done = run_suan("jobs", "--no-header", *args, env=env)
        assert done.returncode == 0, done.stderr
        return {row[0] for row in rows_of(done.stdout)}

    assert listed() == {ids["running"], ids["pending"]}
    assert listed("--state", "succeeded") == {ids["succeeded"]}
    assert listed("--user", "dana") == {ids["running"]}
    assert listed("--queue", "team-b") == {ids["running"]}
    assert listed("--queue", "default") == {ids["pending"]}
    assert listed("--queue", "default", "--all") == {ids["pending"], ids["succeeded"]}
    assert listed("--state", "running,pending") == {ids["running"], ids["pending"]}
    assert listed("-s", "running", "-s", "succeeded") == {ids["running"], ids["succeeded"]}
    assert listed("--user", "admin", "--state", "running") == set()
    assert listed("--user", "dana,admin", "--all") == set(ids.values())
    refused = run_suan("jobs", "--state", "bogus", env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "state" in refused.stderr and "'bogus'" in refused.stderr
    answer = httpx.get(f"{server.url}/v1/jobs", params={"state": ["running", "bogus"]},
                       headers={"Authorization": f"Bearer {server.token}"})
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["query", "state"] and "pending, scheduled, running" in problem["msg"]
    states = ["running", "pending", "succeeded"]
    many = ",".join(f"s{i}" for i in range(101))
    for field, value in (("user", "a\x00b"), ("queue", "q" * 256), ("state", many)):
        answer = httpx.get(f"{server.url}/v1/jobs", params={field: value},
                           headers={"Authorization": f"Bearer {server.token}"})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", field]
    page = server.client().jobs_page(True, 1, state=states)
    assert len(page["jobs"]) == 1 and page["remaining"] == 2
    rest = server.client().jobs_page(True, 5, page["next"], state=states)
    assert {j["id"] for j in page["jobs"] + rest["jobs"]} == set(ids.values())


def test_every_output_parses_and_json_stays_an_alias(busy):
    ids, env = busy
    as_json = json.loads(run_suan("jobs", "--all", "-o", "json", env=env).stdout)
    assert json.loads(run_suan("jobs", "--all", "--json", env=env).stdout) == as_json
    assert yaml.safe_load(run_suan("jobs", "--all", "-o", "yaml", env=env).stdout) == as_json
    assert {job["id"] for job in as_json} == set(ids.values())
    for command in (["queues"], ["nodes"], ["tokens", "list"], ["audit"], ["goodput"],
                    ["policies"], ["catalog"]):
        parsed = json.loads(run_suan(*command, "-o", "json", env=env).stdout)
        loaded = yaml.safe_load(run_suan(*command, "--output", "yaml", env=env).stdout)
        assert shape(loaded) == shape(parsed), command
        table = run_suan(*command, env=env)
        assert table.returncode == 0, table.stderr
        header, *rows = rows_of(table.stdout)
        assert rows and all(len(row) == len(header) for row in rows), command
    queues = rows_of(run_suan("queues", "--no-header", env=env).stdout)
    assert {row[0] for row in queues} == {"default", "team-b"}


def _watch(env: dict[str, str], *args: str, lines: int) -> list[str]:
    """Run `suan jobs --watch ARGS`, read `lines` lines of its output, then press Ctrl-C; it
    must exit with code 0. Every line it printed."""
    watching = subprocess.Popen(
        [sys.executable, "-m", "suan.cli.main", "jobs", "--watch", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    read = [watching.stdout.readline().rstrip("\n") for _ in range(lines)]
    watching.send_signal(signal.SIGINT)
    rest, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, err
    return read + rest.splitlines()


def test_watch_prints_the_list_again_until_interrupted(busy):
    ids, env = busy
    lines = _watch(env, "0.5", "--user", "dana", lines=4)
    assert lines[0].startswith("ID\t") and lines.count(lines[0]) >= 2
    assert {line.split("\t")[0] for line in lines if not line.startswith("ID\t")} == {
        ids["running"]
    }
    started = time.monotonic()
    bare = _watch(env, "--no-header", "--state", "running", lines=2)
    assert time.monotonic() - started >= 1.5, "a bare --watch waits its default 2 s"
    assert [line.split("\t")[0] for line in bare[:2]] == [ids["running"]] * 2


def test_version_comes_from_the_package_metadata():
    shown = run_suan("--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"suan {metadata.version('suan')}"


def test_the_completion_script_is_printed():
    shown = subprocess.run(
        [sys.executable, "-c",
         "import sys; sys.argv[0] = 'suan'; from suan.cli.main import app; app()",
         "--show-completion", "bash"],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "_SUAN_COMPLETE" in shown.stdout and "complete " in shown.stdout


def test_an_error_with_brackets_is_printed_as_it_is(tmp_path):
    jobs = tmp_path / "bad.yaml"
    jobs.write_text(BAD_COMMAND)
    failed = run_suan("schedule", "--cluster", "1x8xH100", "--jobs", str(jobs))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "e.g. [python, train.py]" in failed.stderr


def test_a_server_error_with_brackets_is_printed_as_it_is(server, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD_COMMAND)
    failed = run_suan("submit", str(spec), env=as_user(server, server.token))
    assert failed.returncode == 2 and "[python, train.py]" in failed.stderr


def test_up_refuses_a_port_another_homes_server_holds(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SUAN_TOKEN", "SUAN_SERVER")}
    env["SUAN_HOME"] = str(tmp_path / "other-home")
    refused = run_suan("up", "--devices", "2xH100", "--port", str(server.port), env=env)
    assert refused.returncode == 2, refused.stdout
    assert "another server already answers" in refused.stderr
    assert f":{server.port}" in refused.stderr and "SUAN_TOKEN" not in refused.stdout
    assert not (tmp_path / "other-home" / "server.json").exists()


def test_up_does_not_take_a_stale_server_file_for_its_server(server, tmp_path):
    """A server.json left by a dead process names a url where another server answers now."""
    from suan.cli.control_cmd import _running_server

    home = tmp_path / "stale-home"
    home.mkdir()
    stale = {"url": server.url, "pid": os.getpid(), "instance": "not-the-one"}
    (home / "server.json").write_text(json.dumps(stale))
    assert _running_server(home) is None
    (home / "server.json").write_text((server.home / "server.json").read_text())
    assert _running_server(home)["pid"] == server.process.pid


FILE_COMMANDS = [
    ("submit", "{f}"),
    ("schedule", "--cluster", "1x8xH100", "--jobs", "{f}"),
    ("schedule", "--state", "{f}"),
    ("schedule", "--cluster", "{f}", "--jobs", "{f}"),
    ("sim", "replay", "--trace", "{f}", "--cluster", "4x8xV100"),
    ("sim", "replay", "--trace", "{ok}", "--cluster", "{f}"),
    ("sim", "pack", "--nodes", "{f}", "--pods", "{f}"),
    ("plan", "estimate", "--model", "{f}", "--accelerator", "H100", "--devices", "8"),
    ("catalog", "--file", "{f}"),
    ("server", "--config", "{f}"),
    ("up", "--config", "{f}"),
]


def _problem_file(tmp_path: Path, problem: str) -> Path:
    path = tmp_path / f"{problem}.yaml"
    if problem == "directory":
        path.mkdir()
    elif problem == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    elif problem == "latin1":
        path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    return path


@pytest.mark.parametrize("problem", ["missing", "directory", "binary", "latin1"])
@pytest.mark.parametrize("command", FILE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_file_that_cannot_be_read_is_a_one_line_error(tmp_path, command, problem):
    path = _problem_file(tmp_path, problem)
    ok = tmp_path / "ok.csv"
    ok.write_text("job_id,submit_time,duration,num_gpus\n")
    env = dict(os.environ, SUAN_HOME=str(tmp_path / "home"))
    args = [arg.format(f=path, ok=ok) for arg in command]
    failed = run_suan(*args, env=env)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), failed.stderr


def _unprivileged() -> list[str]:
    """The prefix that runs a command to which file modes apply: none for a user; for root
    (which reads a file whatever its mode) setpriv without the capabilities that bypass them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: nothing here is unreadable to root")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("command", FILE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unreadable_file_is_a_one_line_error(tmp_path, command):
    secret = tmp_path / "secret.yaml"
    secret.write_text("kind: Job\n")
    secret.chmod(0)
    ok = tmp_path / "ok.csv"
    ok.write_text("job_id,submit_time,duration,num_gpus\n")
    env = dict(os.environ, SUAN_HOME=str(tmp_path / "home"))
    args = [arg.format(f=secret, ok=ok) for arg in command]
    failed = subprocess.run([*_unprivileged(), sys.executable, "-m", "suan.cli.main", *args],
                            env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert failed.stderr.strip() == f"error: {secret}: permission denied (cannot read it)"


def test_the_sdk_tells_a_path_from_yaml_text(server, tmp_path, monkeypatch):
    spec = tmp_path / "job.yaml"
    spec.write_text(job_yaml("from-file", ranks=1, steps=1))
    monkeypatch.chdir(tmp_path)
    assert is_spec_path(Path("job.yaml")) and is_spec_path("job.yaml")
    assert is_spec_path(str(spec)) and is_spec_path("missing.yml")
    assert not is_spec_path(job_yaml("inline")) and not is_spec_path("kind: Job")
    client = server.client()
    for given in (spec, str(spec), "job.yaml", job_yaml("inline", ranks=1, steps=1)):
        [job_id] = client.submit(given)
        expected = "inline" if given == job_yaml("inline", ranks=1, steps=1) else "from-file"
        assert client.describe(job_id)["name"] == expected
    with pytest.raises(SuanError, match=r"missing\.yaml: no such file"):
        client.submit("missing.yaml")
    with pytest.raises(SuanError, match="is a directory"):
        client.submit(tmp_path)
    assert isinstance(client, Client)


def test_a_terminal_still_gets_a_table(tmp_path):
    """stdout on a pseudo-terminal: rich's table (aligned columns, no tabs), not tab lines."""
    import pty

    leader, follower = pty.openpty()
    env = dict(os.environ, COLUMNS="200", TERM="dumb")
    shown = subprocess.Popen(
        [sys.executable, "-m", "suan.cli.main", "policies"],
        stdout=follower, stderr=subprocess.DEVNULL, env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    text = b"".join(chunks).decode()
    assert shown.wait(60) == 0
    assert "\t" not in text and "NAME" in text and "default" in text
    piped = run_suan("policies")
    assert piped.stdout.startswith("NAME\tPHASES\t")


def test_schedule_tables_in_a_pipe_keep_each_row_on_one_line():
    shown = run_suan("schedule", "--cluster", "examples/clusters/mixed-h100-910b.yaml",
                     "--jobs", "examples/jobs/mixed.yaml")
    assert shown.returncode == 0, shown.stderr
    [row] = [line for line in shown.stdout.splitlines() if "pretrain-70b" in line]
    assert "+12 nodes" in row and "the tightest rack that holds the gang" in row
    assert shown.stdout.splitlines()[0].startswith("policy default: ")
    assert "reclaim; topology-compact" in shown.stdout.splitlines()[0]
