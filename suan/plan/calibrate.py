"""Check the planner against published measurements and report the per-row error.

    python -m suan.plan.calibrate [--csv $SUAN_SHARED/planner/calibration.csv]
        [--markdown docs/planner-calibration.md]

Rows are read (suan.plan.rows) from the project's calibration CSV and from
`holdout.csv` beside this module (published measurements that were not used to fit anything).
Throughput is compared as tokens/s per device, which is independent of FLOP-counting
conventions; the TFLOP/s columns of the report use each source's own convention (the ratio
of its published TFLOP/s to its tokens/s), so the percentage error is the same.
Memory rows compare the first pipeline stage's model states and activations.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from suan.data import ENV, shared_path
from suan.plan.estimate import Estimate, estimate
from suan.plan.rows import Row, hardware_of, read_rows

DEFAULT_CSV = shared_path("planner", "calibration.csv")
"""The project's calibration rows, in the shared data folder (suan.data)."""
HOLDOUT_CSV = Path(__file__).with_name("holdout.csv")
@dataclass(frozen=True)
class Result:
    """A row with its prediction."""

    row: Row
    predicted: Estimate

    @property
    def throughput_error(self) -> float | None:
        measured = self.row.tokens_per_s_per_device
        if not measured:
            return None
        return self.predicted.tokens_per_s_per_device / measured - 1

    @property
    def memory_error(self) -> float | None:
        if self.row.memory_gib is None:
            return None
        return self.predicted.memory_gib / self.row.memory_gib - 1


def predict(row: Row) -> Result:
    """Run the planner on one row."""
    hardware = hardware_of(row.accelerator)
    return Result(row, estimate(row.model, hardware, row.layout, row.workload))


def mape(errors: list[float]) -> float:
    """Mean absolute percentage error of relative errors (0.05 = 5 %)."""
    return 100 * sum(abs(e) for e in errors) / len(errors) if errors else float("nan")


def summary(results: list[Result]) -> dict[str, dict[str, float]]:
    """MAPE of throughput and memory, overall and per source group, with row counts."""
    groups: dict[str, list[Result]] = {"all": results}
    for result in results:
        groups.setdefault(result.row.group, []).append(result)
    table = {}
    for name, members in groups.items():
        speed = [r.throughput_error for r in members if r.throughput_error is not None]
        memory = [r.memory_error for r in members if r.memory_error is not None]
        table[name] = {"throughput_rows": len(speed), "throughput_mape": mape(speed),
                       "memory_rows": len(memory), "memory_mape": mape(memory)}
    return table


def run(paths: list[Path]) -> list[Result]:
    """Predict every row of every CSV in `paths`."""
    return [predict(row) for path in paths for row in read_rows(path)]


def main(argv: list[str] | None = None) -> int:
    """CLI: print the summary; write the markdown report when asked."""
    from suan.plan.report import calibration_markdown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"calibration CSV not found: {args.csv} (pass --csv or set {ENV})",
              file=sys.stderr)
        return 1
    results, holdout = run([args.csv]), run([HOLDOUT_CSV])
    for name, stats in {**summary(results), "holdout": summary(holdout)["all"]}.items():
        print(f"{name:48s} {stats}")
    if args.markdown:
        args.markdown.write_text(calibration_markdown(results, holdout, args.csv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
