"""Charts for the dashboard as inline SVG, drawn by matplotlib on the server (no chart code
runs in the browser). Without matplotlib (the `plots` extra) a chart is None and pages show
their tables alone."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

FIGURE_WIDTH_IN = 6.4
BAR_HEIGHT_IN = 0.32
"""Height per bar of a horizontal bar chart: one line of 10-point labels with spacing."""


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _svg(figure, plt) -> str:  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def bar_chart(title: str, values: Mapping[str, float], unit: str = "",
              marks: Mapping[str, float] | None = None) -> str | None:
    """Horizontal bars, one per label, as an SVG element (None without matplotlib); `marks`
    draws a tick per label (a queue's guarantee beside its usage, say)."""
    plt = _pyplot()
    if plt is None or not values:
        return None
    labels: Sequence[str] = list(values)
    height = 0.9 + BAR_HEIGHT_IN * len(labels)
    figure, axes = plt.subplots(figsize=(FIGURE_WIDTH_IN, height))
    positions = range(len(labels))
    axes.barh(list(positions), [values[k] for k in labels], color="#3b7dd8")
    if marks:
        axes.scatter([marks.get(k, float("nan")) for k in labels], list(positions),
                     marker="|", s=400, color="#d8553b", label="guarantee", zorder=3)
        axes.legend(loc="lower right", fontsize=8)
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    axes.set_title(title, fontsize=10, loc="left")
    axes.set_xlabel(unit)
    axes.grid(axis="x", alpha=0.3)
    return _svg(figure, plt)


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]],
               x_label: str, y_label: str) -> str | None:
    """One line per named series of (x, y) points, as an SVG element (None without
    matplotlib or points)."""
    plt = _pyplot()
    if plt is None or not any(series.values()):
        return None
    figure, axes = plt.subplots(figsize=(FIGURE_WIDTH_IN, 3.6))
    for name, points in series.items():
        if points:
            axes.plot([x for x, _ in points], [y for _, y in points], label=name)
    axes.set_title(title, fontsize=10, loc="left")
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _svg(figure, plt)
