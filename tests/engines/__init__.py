"""The engines the executor contract suite runs against (tests/test_executor_contract.py).

Each engine is a module here named in ENGINES with `start(workdir: Path) -> EngineUnderTest`,
called once per test session; it returns a string instead when the engine cannot run on this
machine, and the suite skips that engine with the string as the reason.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from suan.exec import Executor

ENGINES = ("local", "slurm", "ray", "kubernetes", "scripted")
SELECTED = tuple(
    name for name in os.environ.get("SUAN_TEST_ENGINES", ",".join(ENGINES)).split(",") if name
)
"""The engines this run tests: SUAN_TEST_ENGINES (a comma list) or all of ENGINES."""


@dataclass
class EngineUnderTest:
    """A running engine: how to make an executor over it (a new one per call, as a restarted
    server would), the nodes a contract test may place ranks on (at least two, with at least
    two free devices each), and how to stop it. `runs_commands` is False for an engine whose
    ranks follow the suite's scripts instead of running their commands (tests/engines/
    scripted.py): tests that need a real process skip it."""

    name: str
    make_executor: Callable[[Path], Executor]
    nodes: tuple[str, ...]
    stop: Callable[[], None] = lambda: None
    extra: dict = field(default_factory=dict)
    runs_commands: bool = True


def start_engine(name: str, workdir: Path) -> EngineUnderTest | str:
    """Start engine `name` (tests/engines/<name>.py) under `workdir`; a string means skip
    (also when SUAN_TEST_ENGINES leaves the engine out)."""
    if name not in SELECTED:
        return f"SUAN_TEST_ENGINES={','.join(SELECTED)} leaves {name} out"
    module = importlib.import_module(f"engines.{name}")
    return module.start(workdir)
