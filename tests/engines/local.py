"""The local executor under the contract suite: one machine, two node names are not possible,
so both 'nodes' are this machine's one node."""

from __future__ import annotations

from pathlib import Path

from engines import EngineUnderTest
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node


def start(workdir: Path) -> EngineUnderTest:
    node, _ = local_node("8xH100")
    return EngineUnderTest(
        "local", lambda home: LocalExecutor(home, node=node), (node.name, node.name)
    )
