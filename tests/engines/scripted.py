"""The scripted executor under the contract suite: two nodes of 8 simulated H100 slots, the
real clock, and no processes. What each contract launch's ranks do is the suite's own script
for that launch (`SCRIPTS`, filled by `job()` in test_executor_contract.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from engines import EngineUnderTest
from suan.cluster.generate import cluster_from_shorthand
from suan.exec import JobLaunch
from suan.exec.scripted import RankScript, Script, ScriptedEngine, ScriptedExecutor

SCRIPTS: dict[str, Script] = {}
"""Job id -> what its ranks do."""


def _script(launch: JobLaunch, rank: int, env: Mapping[str, str]) -> RankScript:
    return SCRIPTS[launch.job_id](launch, rank, env)


def start(workdir: Path) -> EngineUnderTest:
    nodes = tuple(cluster_from_shorthand("2x8xH100").nodes)
    engine = ScriptedEngine(nodes, _script)
    return EngineUnderTest(
        "scripted",
        lambda home: ScriptedExecutor(engine),
        (nodes[0].name, nodes[1].name),
        runs_commands=False,
    )
