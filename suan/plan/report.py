"""Markdown for docs/planner-calibration.md: MAPE tables and the per-row errors."""

from __future__ import annotations

from pathlib import Path

from suan.plan.calibrate import Result, summary
from suan.plan.report_text import MISSES, intro


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}%"


def _mape_table(results: list[Result], title: str) -> list[str]:
    lines = [f"### {title}", "", "| group | throughput rows | throughput MAPE | memory rows |"
             " memory MAPE |", "|---|---:|---:|---:|---:|"]
    for name, stats in summary(results).items():
        memory = f"{stats['memory_mape']:.1f}%" if stats["memory_rows"] else "-"
        speed = f"{stats['throughput_mape']:.1f}%" if stats["throughput_rows"] else "-"
        lines.append(f"| {name} | {stats['throughput_rows']} | {speed} | "
                     f"{stats['memory_rows']} | {memory} |")
    return [*lines, ""]


def _row_line(result: Result) -> str:
    row, est = result.row, result.predicted
    measured = row.tokens_per_s_per_device
    tflops = ""
    if measured and row.reported_tflops:
        per_token = row.reported_tflops / measured
        tflops = f"{row.reported_tflops:.1f} / {est.tokens_per_s_per_device * per_token:.1f}"
    memory = ""
    if row.memory_gib is not None:
        memory = f"{row.memory_gib:.1f} / {est.memory_gib:.1f}"
    speed = f"{measured:.0f} / {est.tokens_per_s_per_device:.0f}" if measured else ""
    return (f"| {row.row_id} | {row.model.name} | {row.accelerator} | {row.layout.describe()} | "
            f"{row.workload.seq} | {speed} | {_pct(result.throughput_error)} | {tflops} | "
            f"{memory} | {_pct(result.memory_error)} |")


def _rows_table(results: list[Result], title: str) -> list[str]:
    header = ("| row | model | accelerator | layout | seq | tokens/s/device measured / "
              "predicted | error | TFLOP/s/device reported / predicted | memory GiB measured"
              " / predicted | error |")
    lines = [f"### {title}", "", header, "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    return [*lines, *(_row_line(r) for r in results), ""]


def calibration_markdown(results: list[Result], holdout: list[Result], csv_path: Path) -> str:
    """The whole calibration report."""
    body = ["## Mean absolute percentage error", "",
            *_mape_table(results, "Calibration rows"), *_mape_table(holdout, "Hold-out rows")]
    rows = ["## Per row", "", *_rows_table(results, "Calibration rows"),
            *_rows_table(holdout, "Hold-out rows")]
    return "\n".join(intro(csv_path.name) + body + MISSES + rows)
