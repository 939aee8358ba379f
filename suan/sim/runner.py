"""Run one trace under several policies, with a progress bar, and collect the figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suan.catalog import Catalog
from suan.cluster.model import Cluster
from suan.sim.metrics import summarise
from suan.sim.simulator import SimConfig, SimResult, Simulator
from suan.sim.workload import TraceJob

STEP = 500
"""Jobs between progress-bar updates."""


def run_policies(jobs: Sequence[TraceJob], cluster: Cluster, policies: Sequence[str],
                 config: SimConfig, *, console: Console | None = None,
                 catalog: Catalog | None = None, label: str = ""
                 ) -> tuple[list[SimResult], list[dict[str, Any]]]:
    """Replay `jobs` once per policy; a progress bar on `console` (None: silent)."""
    results: list[SimResult] = []
    progress = _bar(console)
    with progress:
        for policy in policies:
            task = progress.add_task(f"{label}{policy}", total=len(jobs))

            def advance(done: int, total: int, task: Any = task) -> None:
                if done % STEP == 0 or done == total:
                    progress.update(task, completed=done)

            simulator = Simulator(jobs, cluster, replace(config, policy=policy), catalog)
            results.append(simulator.run(advance))
            progress.update(task, completed=len(jobs))
    return results, [summarise(result) for result in results]


def _bar(console: Console | None) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console or Console(quiet=True),
                    disable=console is None, transient=False)
