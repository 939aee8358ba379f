"""Closed forms the simulation is checked against (docs/simulator.md, "Effective training time
under failures").

- `first_order_ettr`: Kokolis et al. (arXiv 2410.21680) as written up in the project's
  reliability notes, E[ETTR] ~ 1 / (1 + N r_f (u0 + q + dt/2)), with `N r_f = 1 / mtbf_s`;
  it assumes a non-blocking checkpoint and `dt` small against the MTBF.
- `renewal_ettr`: the exact expectation for the same setting (failures on wall time, a
  restart begun anew by a failure during it, free checkpoints every `dt` of work), by the
  renewal-reward theorem: a run T ~ Exp(M) keeps dt * floor(T / dt) of work, whose mean is
  dt / (exp(dt / M) - 1); a restart lasts (exp(u0 / M) - 1) M on average.
"""

from __future__ import annotations

import math


def first_order_ettr(mtbf_s: float, restart_s: float, interval_s: float,
                     wait_s: float = 0.0) -> float:
    """1 / (1 + (u0 + q + dt / 2) / M)."""
    return 1.0 / (1.0 + (restart_s + wait_s + interval_s / 2.0) / mtbf_s)


def renewal_ettr(mtbf_s: float, restart_s: float, interval_s: float) -> float:
    """Exact E[ETTR] for in-place failures and free checkpoints every `interval_s` of work."""
    kept = interval_s / math.expm1(interval_s / mtbf_s)
    restart = mtbf_s * math.expm1(restart_s / mtbf_s)
    return kept / (mtbf_s + restart)
