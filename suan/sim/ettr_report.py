"""`suan sim failures` output: a Rich table, the JSON file, and a plot of ETTR against the
restart overhead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from suan.sim.ettr import PARTS
from suan.sim.ettr_inputs import Scenario
from suan.sim.ettr_job import planned_job
from suan.sim.ettr_study import runs_needed, study


def failures_report(scenario: Scenario, console: Console, json_path: Path | None = None,
                    plot_path: Path | None = None) -> dict[str, Any]:
    """Run the study with a progress bar, print its tables, write the JSON and the plot."""
    job = planned_job(scenario.gpus)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=runs_needed(scenario))
        result = study(scenario, job, tick=lambda: progress.advance(task))
    print_tables(result, console)
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {json_path}", markup=False)
    if plot_path is not None:
        console.print(f"wrote {plot_ettr(result, plot_path)}", markup=False)
    return result


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def print_tables(result: dict[str, Any], console: Console) -> None:
    """The breakdown of both rules side by side, then the sensitivity table."""
    job, rules = result["job"], result["rules"]
    console.print(f"{job['model']} on {job['gpus']:,} {job['accelerator']} ({job['layout']}, "
                  f"step {job['step_time_s']:.2f} s), {result['inputs']['days']['value']:g} "
                  f"days, {len(result['seeds'])} seeds")
    table = Table(title="Effective training time under failures (fractions of wall time)")
    table.add_column("part")
    table.add_column("suan", justify="right")
    table.add_column("baseline", justify="right")
    for part in PARTS:
        table.add_row(part.replace("_", " "), _percent(result["breakdown"][part]),
                      _percent(result["baseline_breakdown"][part]))
    table.add_row("[bold]ETTR[/]",
                  f"[bold]{_percent(result['ettr'])}[/] ± {_percent(result['ettr_spread']['std'])}",
                  f"{_percent(result['baseline_ettr'])} ± "
                  f"{_percent(result['baseline_spread']['std'])}")
    for name, column in (("checkpoint every", "checkpoint_interval_s"),
                         ("hot spare nodes", "hot_spare_nodes"),
                         ("hang detected after", "hang_detection_s")):
        suan, base = rules["suan"][column], rules["baseline"][column]
        unit = " s" if column.endswith("_s") else ""
        table.add_row(name, f"{suan:,.0f}{unit}", f"{base:,.0f}{unit}")
    console.print(table)
    sensitivity = Table(title="ETTR against the restart overhead")
    for column in ("restart overhead", "suan", "baseline"):
        sensitivity.add_column(column, justify="right")
    for row in result["sensitivity"]:
        sensitivity.add_row(f"{row['restart_overhead_min']:g} min", _percent(row["ettr"]),
                            _percent(row["baseline_ettr"]))
    console.print(sensitivity)
    verdict = "meet" if result["target"]["met"] else "miss"
    console.print(f"Suan's rules {verdict} the {_percent(result['target']['ettr'])} target.")


def plot_ettr(result: dict[str, Any], path: Path) -> Path:
    """PNG of ETTR (mean ± std over seeds) against the restart overhead, per rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["sensitivity"]
    minutes = [row["restart_overhead_min"] for row in rows]
    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    for key, label in (("ettr", "Suan's rules"), ("baseline_ettr", "1 h checkpoints, no spares")):
        axes.errorbar(minutes, [100 * row[key] for row in rows],
                      yerr=[100 * row[f"{key}_std"] for row in rows], marker="o", capsize=3,
                      label=label)
    axes.axhline(100 * result["target"]["ettr"], color="grey", linestyle="--", linewidth=1,
                 label="target")
    axes.set_xlabel("restart overhead (min)")
    axes.set_ylabel("ETTR (%)")
    axes.set_title(f"{result['job']['model']} on {result['job']['gpus']:,} GPUs")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
