"""The checkpoint interval that minimises expected lost work (Young 1974, Daly 2006).

A job that saves a checkpoint costing `C` seconds of blocked training every `tau` seconds, on
machines that interrupt it every `M` seconds on average, loses about `C / tau` of its time to
saving and `tau / (2 M)` to redoing the work since the last checkpoint. Young's first-order
optimum is `sqrt(2 C M)`; Daly's higher-order one, used here, is `sqrt(2 C M) - C` for
`C < 2 M` and `M` otherwise. The control plane and the simulator both call `best_interval_s`.
"""

from __future__ import annotations

import math

DAY_S = 86_400.0


def young_interval_s(cost_s: float, mtbf_s: float) -> float:
    """Young's interval sqrt(2 C M)."""
    _check(cost_s, mtbf_s)
    return math.sqrt(2.0 * cost_s * mtbf_s)


def best_interval_s(cost_s: float, mtbf_s: float) -> float:
    """Daly's interval: sqrt(2 C M) - C when C < 2 M, else M. A free checkpoint (C = 0) has
    no best interval other than "always"; callers floor it themselves."""
    _check(cost_s, mtbf_s)
    if cost_s >= 2.0 * mtbf_s:
        return mtbf_s
    return math.sqrt(2.0 * cost_s * mtbf_s) - cost_s


def job_mtbf_s(failures_per_node_day: float, nodes: int) -> float:
    """Mean time between interruptions of a job on `nodes` nodes, each failing independently
    at `failures_per_node_day` (Kokolis et al.: MTTF_job = 1 / (N r_f))."""
    if failures_per_node_day <= 0 or nodes <= 0:
        raise ValueError("failure rate and node count must be positive")
    return DAY_S / (failures_per_node_day * nodes)


def expected_overhead(
    cost_s: float, interval_s: float, mtbf_s: float, restart_s: float = 0.0
) -> float:
    """Fraction of wall time lost to saving, redoing lost work and restarting (first order):
    C / tau + (tau / 2 + R) / M."""
    _check(cost_s, mtbf_s)
    if interval_s <= 0:
        raise ValueError("interval must be positive")
    return cost_s / interval_s + (interval_s / 2.0 + restart_s) / mtbf_s


def _check(cost_s: float, mtbf_s: float) -> None:
    if cost_s < 0 or not math.isfinite(cost_s):
        raise ValueError(f"checkpoint cost must be a finite number >= 0, got {cost_s}")
    if mtbf_s <= 0 or not math.isfinite(mtbf_s):
        raise ValueError(f"MTBF must be a finite number > 0, got {mtbf_s}")
