"""Every policy decides as recorded on bounded Philly replays of both reproduction setups.

The record (tests/fixtures/sim_replay_record.json) holds, per (setup, policy), the fingerprint
of every job's first start, end, preemptions and migrations, and the headline figures, of the
first `JOBS` jobs of three VCs replayed as `suan sim reproduce` does (event-driven, 128-job
window) on the Helios node counts and on the contended ones. A change that only makes the
simulator faster keeps it; a change of decisions must be justified and the record rewritten:

    python tests/test_sim_replay_same.py --write
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from suan.cluster.generate import cluster_from_shorthand
from suan.data import require_shared
from suan.sched import POLICIES
from suan.sim.fingerprint import fingerprint
from suan.sim.metrics import summarise
from suan.sim.reproduce import EVENT_DRIVEN, HELIOS_WINDOW, vc_nodes
from suan.sim.simulator import SimResult, simulate
from suan.sim.traces import read_philly
from suan.sim.workload import TraceJob

RECORD = Path(__file__).resolve().parent / "fixtures" / "sim_replay_record.json"
VCS = ("11cb48", "103959", "ed69ec")
JOBS = 800
SETUPS = {
    "helios": ("traces", "philly", "philly_vc_nodes_helios.csv"),
    "contended": ("peer-inputs", "tiresias", "philly-helios", "contended_nodes.csv"),
}
"""Setup -> the parts of its node-count table's path under the shared data folder."""
TRACE = ("traces", "philly", "philly_jobs_sorted.csv.gz")
POLICY_NAMES = POLICIES.names()
Shared = Callable[..., Path]
FIGURES = ("finished", "avg_jct_s", "makespan_s", "preemptions", "migrations")

_jobs: dict[str, list[TraceJob]] = {}


def _vc_jobs(vc: str, shared: Shared) -> list[TraceJob]:
    if vc not in _jobs:
        _jobs[vc] = read_philly(shared(*TRACE), vcs={vc},
                                start=HELIOS_WINDOW[0], end=HELIOS_WINDOW[1]).jobs[:JOBS]
    return _jobs[vc]


def replay(setup: str, policy: str, shared: Shared = require_shared) -> dict[str, Any]:
    """The fingerprint and summed figures of the setup's bounded replays under `policy`;
    `shared` resolves paths under the shared data folder."""
    nodes = vc_nodes(shared(*SETUPS[setup]))
    results: list[SimResult] = []
    totals = dict.fromkeys(FIGURES, 0.0)
    for vc in VCS:
        cluster = cluster_from_shorthand(f"{nodes[vc]}x8xV100", name=vc)
        result = simulate(_vc_jobs(vc, shared), cluster, policy, EVENT_DRIVEN)
        results.append(result)
        figures = summarise(result)
        for name in FIGURES:
            totals[name] += figures.get(name, 0)
    return {"decisions": fingerprint(results),
            **{name: round(value, 3) for name, value in totals.items()}}


def _recorded() -> dict[str, dict[str, Any]]:
    return json.loads(RECORD.read_text())["replays"]


def test_the_record_covers_every_policy_on_both_setups():
    assert set(_recorded()) == {f"{s}/{p}" for s in SETUPS for p in POLICY_NAMES}


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_replay_decides_as_recorded(setup, policy, shared):
    assert replay(setup, policy, shared) == _recorded()[f"{setup}/{policy}"]


def _write() -> None:
    replays = {f"{s}/{p}": replay(s, p) for s in SETUPS for p in POLICY_NAMES}
    document = {"vcs": list(VCS), "jobs_per_vc": JOBS, "replays": replays}
    RECORD.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_sim_replay_same.py --write")
    _write()
