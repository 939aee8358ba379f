"""The control plane over an engine it does not own: a settings file with a mistake, an
engine that cannot be reached (at start, and while jobs wait), nodes that cannot see the
server's home, and an engine that refuses a launch. Each says why, in the engine's words, and
loses no job."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from control_helpers import job_yaml

from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.identity import IdentityPolicy
from suan.control.models import EventRow, JobRow
from suan.control.reconciler import Reconciler
from suan.control.server import ServerOptions, build, options_from_file
from suan.control.settings import read_server_file
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.errors import SpecError, SuanError
from suan.exec import EngineError, OsIdentity
from suan.exec.slurm import SlurmExecutor, SlurmSettings


def test_a_settings_file_mistake_names_the_field(tmp_path):
    path = tmp_path / "suan.yaml"
    path.write_text("engine: slurmm\nstorage: {probe: maybe}\n")
    with pytest.raises(SpecError) as caught:
        read_server_file(path)
    text = str(caught.value)
    assert "engine: 'slurmm' is not allowed" in text and "storage.probe" in text
    path.write_text("engine: slurm\nslurm: {partition: suan, simulated: true}\n")
    options = options_from_file(path, home=tmp_path / "home", engine=None, policy=None)
    assert options.engine == "slurm" and options.engine_settings["partition"] == "suan"
    assert options.policy == "default"


def test_a_server_refuses_to_start_on_an_engine_it_cannot_reach(tmp_path):
    (tmp_path / "home").mkdir()
    options = ServerOptions(
        home=tmp_path / "home",
        engine="slurm",
        engine_settings={"conf": str(tmp_path / "no-slurm.conf")},
    )
    with pytest.raises(SuanError, match=r"cannot reach the slurm engine: slurm: .*no-slurm\.conf"):
        build(options)


def reconciler_over(executor, home: Path) -> tuple[Store, Reconciler]:
    home.mkdir(exist_ok=True)
    config = ControlConfig(home=home, restart_backoff_s=0.1, stop_grace_s=1.0)
    store = Store.open(database_url(home))
    return store, Reconciler(store, executor, config)


def submit_one(store: Store, home: Path, document: str) -> str:
    with store.session() as session:
        return submit(session, Identity("admin", admin=True), document, None, home).jobs[0]["id"]


def test_jobs_wait_with_the_engines_message_while_it_is_unreachable(tmp_path):
    home = tmp_path / "home"
    executor = SlurmExecutor(home, SlurmSettings(conf=str(tmp_path / "no-slurm.conf")))
    store, reconciler = reconciler_over(executor, home)
    job_id = submit_one(store, home, job_yaml("waits", ranks=2))
    reconciler.tick()
    with store.session() as session:
        row = session.get(JobRow, job_id)
        assert row.state == "pending" and row.reason_code == "engine"
        assert row.reason.startswith("waiting for the slurm engine: slurm: ")
        assert "no-slurm.conf does not exist" in row.reason


def test_nodes_that_cannot_run_from_the_servers_home_stop_the_start(slurm_engine, tmp_path):
    cluster = slurm_engine.extra["cluster"]
    (tmp_path / "home").mkdir()
    options = ServerOptions(
        home=tmp_path / "home",
        engine="slurm",
        engine_settings={
            "conf": str(cluster / "slurm.conf"),
            "partition": "suan",
            "simulated": True,
            "python": str(tmp_path / "no-python-here"),
        },
        probe_timeout_s=30,
    )
    with pytest.raises(SuanError, match=r"nodes n1, n2, n3, n4 do not see the server's home"):
        build(options)


def test_a_launch_the_engine_refuses_waits_then_fails_with_its_words(slurm_engine, tmp_path):
    home = tmp_path / "home"
    store, reconciler = reconciler_over(SlurmExecutor(home, slurm_engine.extra["settings"]), home)
    too_many = textwrap.dedent("""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {name: crowded}
        spec:
          replicas: 9
          command: [python, -c, "print(1)"]
        """)
    job_id = submit_one(store, home, too_many)
    for _ in range(200):
        reconciler.tick()
        with store.session() as session:
            row = session.get(JobRow, job_id)
            if row.state == "failed":
                break
        reconciler.tick(now=(row.not_before or 0) + 0.01)
    with store.session() as session:
        row = session.get(JobRow, job_id)
        refusals = session.query(EventRow).filter_by(job_id=job_id, kind="launch-refused").all()
    assert row.state == "failed", row.reason
    assert len(refusals) == 3
    assert "Requested node configuration is not available" in row.reason
    assert row.reason.startswith("the slurm engine refused it 3 times")


def test_each_job_runs_as_its_users_account_or_is_refused_with_the_reason(os_account):
    policy = IdentityPolicy("submitter", {"alice": os_account.pw_name, "mallory": "root"})
    assert policy.resolve("alice") == OsIdentity(
        os_account.pw_name, os_account.pw_uid, os_account.pw_gid
    )
    with pytest.raises(EngineError, match="no OS account 'nobody-here' for Suan user"):
        policy.resolve("nobody-here")
    with pytest.raises(EngineError, match="a root account: refused"):
        policy.resolve("mallory")
    assert IdentityPolicy().resolve("alice") is None


def test_a_user_without_an_account_gets_one_made_when_the_server_may(os_account):
    """createAccounts: an unmapped user gets `suan-<user>` (no login shell), made once; a
    mapped user keeps their mapping."""
    import pwd
    import subprocess

    policy = IdentityPolicy("submitter", {"alice": os_account.pw_name}, create_accounts=True)
    try:
        made = policy.resolve("zed")
        entry = pwd.getpwnam("suan-zed")
        assert made == OsIdentity("suan-zed", entry.pw_uid, entry.pw_gid) and entry.pw_uid != 0
        assert entry.pw_shell.endswith("nologin")
        assert policy.resolve("zed") == made
        assert policy.resolve("alice").name == os_account.pw_name
    finally:
        subprocess.run(["userdel", "suan-zed"], check=False, capture_output=True)


class AnswerLost(SlurmExecutor):
    """sbatch took the job, but its answer never came back (a timeout after the submit)."""

    def launch(self, job, placement):
        super().launch(job, placement)
        raise EngineError("slurm: sbatch did not answer within 30s")


def test_a_launch_whose_answer_was_lost_is_adopted_not_submitted_again(slurm_engine, tmp_path):
    home = tmp_path / "home"
    store, reconciler = reconciler_over(AnswerLost(home, slurm_engine.extra["settings"]), home)
    job_id = submit_one(store, home, job_yaml("lost-answer", ranks=2, steps=2))
    for _ in range(300):
        reconciler.tick()
        with store.session() as session:
            row = session.get(JobRow, job_id)
            if row.state in ("succeeded", "failed"):
                break
        time.sleep(0.1)
    assert row.state == "succeeded", row.reason
    with store.session() as session:
        kinds = [e.kind for e in session.query(EventRow).filter_by(job_id=job_id)]
    assert "launch-refused" not in kinds and kinds.count("running") == 1
    queue = reconciler.executor._queue()
    assert [j["name"] for j in queue].count(f"suan-{job_id}-1") == 1
