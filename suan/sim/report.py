"""Reports of replays: a terminal table with the policies side by side, the JSON document,
and the per-job CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from suan.sim.metrics import job_rows
from suan.sim.simulator import SimResult

ROWS: tuple[tuple[str, str, str], ...] = (
    ("avg_jct_s", "avg JCT", "s"),
    ("median_jct_s", "median JCT", "s"),
    ("p95_jct_s", "p95 JCT", "s"),
    ("p99_jct_s", "p99 JCT", "s"),
    ("avg_queue_s", "avg queueing", "s"),
    ("median_queue_s", "median queueing", "s"),
    ("p99_queue_s", "p99 queueing", "s"),
    ("makespan_s", "makespan", "s"),
    ("gpu_utilization", "GPU busy util", "%"),
    ("gpu_allocation", "GPU allocated", "%"),
    ("ftf_mean", "finish-time fairness (mean)", "x"),
    ("ftf_max", "finish-time fairness (max)", "x"),
    ("preemptions", "preemptions", ""),
    ("migrations", "moves to a faster type", ""),
    ("lost_gpu_hours", "GPU-hours lost", ""),
    ("scheduling_goodput", "scheduling goodput", "%"),
    ("runtime_goodput", "runtime goodput", "%"),
    ("finished", "jobs finished", ""),
    ("rejected", "jobs rejected", ""),
    ("timeouts", "jobs timed out", ""),
    ("timeout_device_s", "device-seconds lost to timeouts", ""),
    ("dependency_cancelled", "jobs cancelled (dependency)", ""),
    ("mean_dependency_wait_s", "mean dependency wait", "s"),
    ("cycles", "scheduling cycles", ""),
    ("wall_s", "wall time", "s"),
)


BATCH_ROWS = frozenset({"timeouts", "timeout_device_s", "dependency_cancelled",
                        "mean_dependency_wait_s"})
"""Rows shown only where some policy has a figure other than 0 (a trace with batch jobs)."""


def fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "x":
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}"


def comparison_table(figures: Sequence[dict[str, Any]], title: str = "replay") -> Table:
    """Policies as columns, metrics as rows."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric", no_wrap=True)
    for item in figures:
        table.add_column(str(item["policy"]), justify="right")
    for key, label, unit in ROWS:
        if key in BATCH_ROWS and not any(item.get(key) for item in figures):
            continue
        table.add_row(label + (f" ({unit})" if unit == "s" else ""),
                      *(fmt(item.get(key), unit) for item in figures))
    return table


def queue_table(figures: Sequence[dict[str, Any]], limit: int = 20) -> Table:
    """Average JCT per queue, policies as columns."""
    table = Table(title="average JCT per queue (s)", title_justify="left")
    table.add_column("queue")
    table.add_column("jobs", justify="right")
    for item in figures:
        table.add_column(str(item["policy"]), justify="right")
    names = sorted(figures[0]["queues"], key=lambda q: -figures[0]["queues"][q]["jobs"])
    for name in names[:limit]:
        jobs = figures[0]["queues"][name]["jobs"]
        table.add_row(name, f"{jobs:,}", *(fmt(item["queues"].get(name, {}).get("avg_jct_s"), "s")
                                           for item in figures))
    return table


def print_report(figures: Sequence[dict[str, Any]], console: Console, title: str) -> None:
    console.print(comparison_table(figures, title))
    if figures and len(figures[0].get("queues", {})) > 1:
        console.print(queue_table(figures))


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def write_jobs_csv(path: Path, results: Sequence[SimResult]) -> None:
    """One row per (policy, job)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [row for result in results for row in job_rows(result)]
    with path.open("w", newline="") as handle:
        if not rows:
            return
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
