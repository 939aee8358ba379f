"""PNG plots of replays and packing runs (matplotlib, Agg backend, imported lazily).

- `jct_cdf.png`: the JCT CDF per policy (log-scaled time);
- `utilisation.png`: allocated GPUs and queue length over time, per policy;
- `unallocated.png`: unallocated GPU % against arrived GPU demand, per placement (packing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from suan.sim.simulator import SimResult
from suan.sim.state import Status

MAX_POINTS = 4000
"""Timeline points drawn per policy (the timeline is thinned evenly above this)."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def jct_cdf(results: Sequence[SimResult], path: Path) -> Path:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for result in results:
        jct = np.sort([s.end - s.trace.submit_time for s in result.jobs
                       if s.status == Status.DONE and s.end is not None])
        if len(jct):
            axes.plot(np.maximum(jct, 1), np.arange(1, len(jct) + 1) / len(jct),
                      label=result.policy)
    axes.set_xscale("log")
    axes.set_xlabel("job completion time (s)")
    axes.set_ylabel("fraction of jobs")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(plt, figure, path)


def utilisation(results: Sequence[SimResult], path: Path) -> Path:
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for result in results:
        timeline = result.timeline[:: max(1, len(result.timeline) // MAX_POINTS)]
        if not timeline:
            continue
        times = np.array([t for t, *_ in timeline]) / 86_400
        top.step(times, [100 * a / max(c, 1) for _, a, _, c in timeline], where="post",
                 label=result.policy, linewidth=0.8)
        bottom.step(times, [p for _, _, p, _ in timeline], where="post", label=result.policy,
                    linewidth=0.8)
    top.set_ylabel("GPUs allocated (%)")
    bottom.set_ylabel("jobs waiting")
    bottom.set_xlabel("time (days)")
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    top.legend()
    return _save(plt, figure, path)


def unallocated(curves: Mapping[str, Sequence[tuple[float, float]]], path: Path) -> Path:
    """`curves`: placement -> (arrived GPU demand %, unallocated GPU %) points."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        axes.plot([x for x, _ in points], [y for _, y in points], label=name)
    axes.set_xlabel("arrived GPU demand (% of capacity)")
    axes.set_ylabel("unallocated GPUs (% of capacity)")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(plt, figure, path)


def replay_plots(results: Sequence[SimResult], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [jct_cdf(results, directory / "jct_cdf.png"),
            utilisation(results, directory / "utilisation.png")]


def _save(plt: Any, figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
