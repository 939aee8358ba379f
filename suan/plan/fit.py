"""Refit the planner's three fitted constants on the calibration rows (never the hold-out).

    python -m suan.plan.fit [--csv ../shared/planner/calibration.csv]

Evaluates every point of FIT_GRID and prints the point with the lowest tokens/s MAPE over the
calibration rows, next to the values in `efficiency.py`. The constants live in
`suan.plan.efficiency`: `OVERLAP_INTERFERENCE`, `GEMM_HALF_WIDTH_PER_RIDGE` and
`ELEMENTWISE_PASSES`; their current values are the argmin of this grid.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from suan.plan import efficiency
from suan.plan.calibrate import DEFAULT_CSV, mape, predict
from suan.plan.rows import Row, read_rows

FITTED = ("OVERLAP_INTERFERENCE", "GEMM_HALF_WIDTH_PER_RIDGE", "ELEMENTWISE_PASSES")
"""Names of the fitted constants in `suan.plan.efficiency`, in FIT_GRID order."""

FIT_GRID: tuple[tuple[float, ...], ...] = (
    (0.0, 0.25, 0.5, 0.75, 1.0),
    (0.6, 0.8, 1.0, 1.2, 1.4, 1.6),
    (5.5, 6.0, 6.5, 7.0, 7.5, 8.0),
)
"""Values tried for each fitted constant: the overlap interference over its physical range
[0, 1]; the GEMM half-width from 0.6 to 1.6 roofline ridges; 5.5 to 8 element-wise passes."""


@contextmanager
def constants(values: tuple[float, ...]) -> Iterator[None]:
    """Temporarily set the fitted constants to `values` (FITTED order)."""
    saved = tuple(getattr(efficiency, name) for name in FITTED)
    try:
        for name, value in zip(FITTED, values, strict=True):
            setattr(efficiency, name, value)
        yield
    finally:
        for name, value in zip(FITTED, saved, strict=True):
            setattr(efficiency, name, value)


def calibration_mape(rows: list[Row], values: tuple[float, ...]) -> float:
    """Tokens/s MAPE (%) of the rows with throughput when the constants take `values`."""
    with constants(values):
        errors = [predict(row).throughput_error for row in rows
                  if row.tokens_per_s_per_device]
    return mape([error for error in errors if error is not None])


def fit(rows: list[Row]) -> tuple[float, tuple[float, ...]]:
    """(MAPE, values) of the grid point with the lowest MAPE; ties keep the first."""
    scored = ((calibration_mape(rows, values), values)
              for values in itertools.product(*FIT_GRID))
    return min(scored, key=lambda item: item[0])


def main(argv: list[str] | None = None) -> int:
    """CLI: print the current and the best-fitting values and their calibration MAPE."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"calibration CSV not found: {args.csv} (pass --csv or set SUAN_SHARED)",
              file=sys.stderr)
        return 1
    rows = read_rows(args.csv)
    current = tuple(getattr(efficiency, name) for name in FITTED)
    best_mape, best = fit(rows)
    print(f"current {dict(zip(FITTED, current, strict=True))}: "
          f"MAPE {calibration_mape(rows, current):.2f}%")
    print(f"best    {dict(zip(FITTED, best, strict=True))}: MAPE {best_mape:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
