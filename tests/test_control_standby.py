"""A standby control plane over PostgreSQL: the lease and its fencing in-process, then the chaos
run (bench/control_chaos.py) with real servers: the leader killed with `kill -9` at random
moments (some mid-launch) and paused with SIGSTOP under a stream of submissions; no job is
lost, none is launched twice, nothing runs after a cancel, and a standby takes over in < 10 s."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_control_store import _postgres_url, empty_url, store  # noqa: F401 - the fixtures

from suan.control.leader import Fenced, Lease

ROOT = Path(__file__).resolve().parents[1]


def test_one_server_leads_and_a_standby_takes_over_only_after_the_lease_ends(store):  # noqa: F811
    first, second = Lease(store, "first", ttl_s=1.0), Lease(store, "second", ttl_s=1.0)
    assert first.hold() and first.epoch == 1
    assert not second.hold() and not second.leading
    assert first.hold() and first.epoch == 1  # renewed, same epoch
    time.sleep(1.1)  # the first stops renewing: paused, or dead
    assert second.hold() and second.epoch == 2
    assert second.status()["leader"] == "second" and second.status()["leading"]


def test_a_leader_paused_past_its_lease_is_fenced_when_it_resumes(store):  # noqa: F811
    first, second = Lease(store, "first", ttl_s=1.0), Lease(store, "second", ttl_s=1.0)
    assert first.hold()
    with store.session() as session:
        first.check(session)  # leading: writes may go on
    time.sleep(1.1)
    assert not first.fresh()  # no side effect now, even before anyone took over
    assert second.hold()
    with pytest.raises(Fenced), store.session() as session:
        first.check(session)
    assert not first.hold() and not first.leading


def test_a_clean_stop_hands_the_lease_on_at_once(store):  # noqa: F811
    first, second = Lease(store, "first", ttl_s=30.0), Lease(store, "second", ttl_s=30.0)
    assert first.hold() and not second.hold()
    first.release()
    assert second.hold() and second.epoch == 2


def test_kill_and_pause_the_leader_under_load_and_nothing_is_lost_or_run_twice():
    """At most 8 events in at most 90 s here (bench/control_chaos.py runs longer ones)."""
    url = _postgres_url()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "control_chaos.py"), "--db", url,
         "--kills", "6", "--pauses", "2", "--seconds", "90", "--gap", "2", "--seed", "7"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    print(json.dumps(result))
    assert result["kills"] == 6 and result["pauses"] == 2
    assert result["jobs"] > 30
    assert result["lost"] == 0, result["lost_states"]
    assert result["launched_twice"] == 0
    assert result["cancelled"] == 4 and result["untracked_after_cancel"] == 0
    assert result["takeover_max_s"] < 10.0, result["takeover_s"]
