"""A hostile tenant, for real: with `identity.runAs: submitter` each user's ranks run as their
own OS account, and bob's job tries to read the server's secrets, read and write alice's files,
read alice's rank's environment and kill it. Every attempt must fail, and alice's job finishes.
A checkpoint directory in alice's area is refused at submit, naming the field."""

from __future__ import annotations

import json
import textwrap

import pytest
from control_helpers import Server, wait_for
from hostile import FORK_BOMB, LOG_FLOOD, MEMORY_HOG, forks_made

from suan.client import ApiError
from suan.exec.cgroups import unavailable_reason
from suan.exec.isolation import sandbox_unavailable

ATTACK = r"""
import json, os, signal, sys
target = json.loads(os.environ["TARGET"])
home = target["home"]
def attempt(name, action):
    try:
        action()
        print("ATTACK", name, "SUCCEEDED", flush=True)
    except OSError as exc:
        print("ATTACK", name, "blocked", type(exc).__name__, flush=True)
attempt("read-admin-token", lambda: open(os.path.join(home, "admin-token")).read())
attempt("read-store", lambda: open(os.path.join(home, "suan.db"), "rb").read(16))
attempt("list-jobs", lambda: os.listdir(os.path.join(home, "jobs")))
attempt("read-other-job-dir", lambda: os.listdir(target["job_dir"]))
attempt("read-other-checkpoint", lambda: open(target["secret_file"]).read())
attempt("write-other-checkpoint",
        lambda: open(os.path.join(target["checkpoints"], "planted"), "w").write("x"))
attempt("read-other-environ", lambda: open(f"/proc/{target['pid']}/environ", "rb").read())
attempt("kill-other-rank", lambda: os.kill(target["pid"], signal.SIGKILL))
def see_other_processes():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"alice-" + b"secret" in open(f"/proc/{pid}/cmdline", "rb").read():
                return
        except OSError:
            continue
    raise PermissionError("no process of another job is visible")
attempt("see-other-processes", see_other_processes)
"""


def job(name: str, command: list[str], env: dict[str, str], extra: str = "") -> str:
    return (
        textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          command: {json.dumps(command)}
          env: {json.dumps(env)}
          restartPolicy: never
        """)
        + extra
    )


def tenants_server(open_home, alice, bob, extra: str = ""):
    """A started server whose users alice and bob run as the OS accounts `alice` and `bob`."""
    config = open_home / "suan.yaml"
    config.write_text(
        "engine: local\nlocal: {devices: 8xH100}\n"
        "identity:\n  runAs: submitter\n"
        f"  accounts: {{alice: {alice.pw_name}, bob: {bob.pw_name}}}\n" + extra
    )
    home = open_home / "home"
    home.mkdir()
    server = Server(home, config=config)
    server.start()
    return server


@pytest.fixture
def tenant_server(tenant_can_run_python, second_account, open_home):
    server = tenants_server(open_home, tenant_can_run_python, second_account)
    yield server
    server.stop()


def test_a_tenants_job_cannot_touch_another_tenants_job_or_the_server(tenant_server):
    admin = tenant_server.client()
    alice = tenant_server.client(admin.create_user("alice"))
    bob = tenant_server.client(admin.create_user("bob"))
    victim = (
        "import os, time; d = os.environ['SUAN_CHECKPOINT_DIR']; "
        "open(os.path.join(d, 'secret'), 'w').write('alice-secret'); "
        "print('ready', flush=True); time.sleep(60)"
    )
    [alice_job] = alice.submit(job("victim", ["python", "-c", victim], {"SECRET": "alice-env"}))
    wait_for(lambda: "ready" in alice.logs(alice_job)["data"], timeout=30, what="alice's job")
    detail = admin.describe(alice_job)
    home = str(tenant_server.home)
    target = {
        "home": home,
        "job_dir": f"{home}/jobs/{alice_job}",
        "checkpoints": detail["checkpoint_dir"],
        "secret_file": f"{detail['checkpoint_dir']}/secret",
        "pid": detail["ranks_detail"][0]["pid"],
    }
    [bob_job] = bob.submit(job("attack", ["python", "-c", ATTACK], {"TARGET": json.dumps(target)}))
    finished = bob.wait(bob_job, timeout=60)
    log = bob.logs(bob_job)["data"]
    attacks = [line.split()[1:3] for line in log.splitlines() if line.startswith("ATTACK")]
    assert finished["state"] == "succeeded", log
    assert len(attacks) == 9, log
    assert all(outcome == "blocked" for _, outcome in attacks), log
    assert admin.describe(alice_job)["state"] == "running"
    with pytest.raises(ApiError) as refused:
        bob.submit(job("plant", ["true"], {}, f"  checkpoint: {{dir: {home}/users/alice/ck}}\n"))
    assert refused.value.status == 422
    assert "spec.checkpoint.dir" in str(refused.value) and "outside your area" in str(refused.value)
    admin.cancel(alice_job)


@pytest.fixture
def limited_server(tenant_can_run_python, second_account, open_home):
    needs = [reason for reason in (unavailable_reason(), sandbox_unavailable()) if reason]
    if needs:
        pytest.skip("; ".join(needs))
    server = tenants_server(
        open_home, tenant_can_run_python, second_account, "limits: {logBytes: 20000}\n"
    )
    yield server
    server.stop()


def test_a_fork_bomb_a_memory_hog_and_a_log_flood_stop_only_themselves(limited_server):
    admin = limited_server.client()
    alice = limited_server.client(admin.create_user("alice"))
    bob = limited_server.client(admin.create_user("bob"))
    [steady] = alice.submit(job("steady", ["python", "-c", "print('up', flush=True); "
                                            "import time; time.sleep(60)"], {}))
    wait_for(lambda: "up" in alice.logs(steady)["data"], timeout=30, what="alice's job")
    [bomb] = bob.submit(job("bomb", ["python", "-c", FORK_BOMB], {}, "  pids: 40\n"))
    [hog] = bob.submit(job("hog", ["python", "-c", MEMORY_HOG], {}, "  memory: 64Mi\n"))
    [flood] = bob.submit(job("flood", ["python", "-c", LOG_FLOOD], {}))
    bombed, hogged, flooded = (bob.wait(j, timeout=90) for j in (bomb, hog, flood))

    assert bombed["state"] == "succeeded" and forks_made(bob.logs(bomb)["data"])[0] < 40
    assert hogged["state"] == "failed" and "memory" in hogged["reason"], hogged["reason"]
    text = bob.logs(flood)["data"]
    assert flooded["state"] == "succeeded"
    assert "log cap of 20000 bytes reached" in text and "END" not in text and len(text) < 21_000
    assert alice.describe(steady)["state"] == "running"
    [after] = alice.submit(job("after", ["true"], {}))
    assert alice.wait(after, timeout=60)["state"] == "succeeded"
    alice.cancel(steady)
