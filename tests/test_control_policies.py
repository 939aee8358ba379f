"""The control plane runs every scheduler policy the simulator offers, and carries the
scheduler's state from one cycle to the next."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from control_helpers import job_yaml

from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.models import JobRow
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node


@pytest.mark.parametrize("policy", ["las-preemptive", "srtf-preemptive"])
def test_the_server_runs_a_rank_policy_and_carries_the_schedulers_state(tmp_path: Path,
                                                                         policy: str):
    node, simulated = local_node("8xH100")
    config = ControlConfig(home=tmp_path, simulated=simulated, policy=policy,
                           restart_backoff_s=0.1, stop_grace_s=1.0)
    store = Store.open(database_url(tmp_path))
    reconciler = Reconciler(store, LocalExecutor(tmp_path, node=node), config)
    with store.session() as session:
        job_id = submit(session, Identity("admin", admin=True),
                        job_yaml("ranked", ranks=1, steps=2), None, tmp_path).jobs[0]["id"]
    deadline = time.monotonic() + 30.0
    state = ""
    while time.monotonic() < deadline and state not in ("succeeded", "failed"):
        reconciler.tick()
        with store.session() as session:
            state = session.get(JobRow, job_id).state
        time.sleep(0.05)
    assert state == "succeeded"
    assert reconciler.carried.cycles >= 1
