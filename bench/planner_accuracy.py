"""Benchmark: the planner's error on published training runs, called as a user calls it; JSON.

    python bench/planner_accuracy.py [--set validation|holdout|all] [--rows]

Every row of the validation files (suan/plan/validation*.csv: never fitted on, frozen by
hash) and of
suan/plan/holdout.csv becomes one `suan plan estimate ... --json` run through the `suan`
entry point itself (`suan.cli.main.app`, the function the installed command runs): the
model as a built-in name or a config.json in its authors' dialect, the accelerator, the device
count and the published layout; settings a source does not print are left to the command's
defaults. Prints the mean absolute percentage error (MAPE) of tokens/s per device and of
memory per device, overall, per set, per source group, and per kind of run × sequence band ×
precision (over all rows, and over the validation and the hold-out rows alone), and every
layout the command
refused (non-zero exit) with its message.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from suan.cli import main as cli_main
from suan.plan.validation import HOLDOUT_CSV, VALIDATION_FILES, Case, estimate_args, read_cases

SETS = {"validation": VALIDATION_FILES, "holdout": (HOLDOUT_CSV,)}
"""Each set's files: every frozen validation file, and the hold-out."""


@dataclass(frozen=True)
class Outcome:
    """One case's run: exit code, and the prediction (exit 0) or the message (otherwise)."""

    case: Case
    set_name: str
    exit_code: int
    prediction: dict[str, Any] | None
    message: str

    def error(self, measured: float | None, key: str) -> float | None:
        """Signed relative error of the predicted `key` against `measured` (None if absent)."""
        if self.prediction is None or not measured:
            return None
        return float(self.prediction[key]) / measured - 1.0


def accepted_options() -> frozenset[str]:
    """Every option name `suan plan estimate` takes (e.g. '--fp8-recipe'), read from the
    command itself so the benchmark passes what the installed version accepts."""
    group = typer.main.get_command(cli_main.cli)
    command = group.commands["plan"].commands["estimate"]  # type: ignore[attr-defined]
    names: set[str] = set()
    for param in command.params:
        names.update(getattr(param, "opts", ()))
        names.update(getattr(param, "secondary_opts", ()))
    return frozenset(names)


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Run `suan <args>` in-process through the entry point; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["suan", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli_main.app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # a traceback is a refusal too, reported with its type
        code, err = 1, io.StringIO(f"{type(exc).__name__}: {exc}")
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()


def model_ref(case: Case, folder: Path) -> str:
    """What the user passes as --model: the built-in name, or the path of the config.json
    written for the case."""
    if case.config is None:
        return case.model
    path = folder / f"{case.row_id}-{case.model.replace(' ', '_').replace('/', '_')}.json"
    path.write_text(json.dumps(case.config, indent=2))
    return str(path)


def run_case(case: Case, set_name: str, folder: Path, accepted: frozenset[str]) -> Outcome:
    """Estimate one case through the CLI."""
    code, out, err = run_cli(estimate_args(case, model_ref(case, folder), accepted))
    if code != 0:
        message = " ".join((err or out).split()) or f"exit code {code}"
        return Outcome(case, set_name, code, None, message)
    return Outcome(case, set_name, 0, json.loads(out), "")


def _mape(errors: list[float]) -> float | None:
    return round(100 * sum(abs(e) for e in errors) / len(errors), 1) if errors else None


def _bias(errors: list[float]) -> float | None:
    return round(100 * sum(errors) / len(errors), 1) if errors else None


def summarise(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Row counts, tokens/s and memory MAPE (and mean signed error) of a set of outcomes."""
    outcomes = list(outcomes)
    speed = [e for o in outcomes
             if (e := o.error(o.case.tokens_per_s_per_device, "tokens_per_s_per_device"))
             is not None]
    memory = [e for o in outcomes
              if (e := o.error(o.case.memory_gib, "memory_gib_per_device")) is not None]
    return {
        "rows": len(outcomes), "refused": sum(o.exit_code != 0 for o in outcomes),
        "tokens_per_s_rows": len(speed), "tokens_per_s_mape_pct": _mape(speed),
        "tokens_per_s_mean_signed_error_pct": _bias(speed),
        "memory_rows": len(memory), "memory_mape_pct": _mape(memory),
        "memory_mean_signed_error_pct": _bias(memory),
    }


def grouped(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """`summarise` per kind × sequence band × precision, sorted by those keys."""
    groups: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        case = outcome.case
        groups[(case.kind, case.band, case.precision)].append(outcome)
    return [{"kind": kind, "band": band, "precision": precision, **summarise(members)}
            for (kind, band, precision), members in sorted(groups.items())]


def row_report(outcome: Outcome) -> dict[str, Any]:
    """One row: its identity, measured and predicted figures, or its refusal."""
    case, prediction = outcome.case, outcome.prediction or {}
    speed = outcome.error(case.tokens_per_s_per_device, "tokens_per_s_per_device")
    memory = outcome.error(case.memory_gib, "memory_gib_per_device")
    return {
        "set": outcome.set_name, "row": case.row_id, "kind": case.kind, "band": case.band,
        "precision": case.precision, "model": case.model, "accelerator": case.accelerator,
        "devices": case.devices, "exit_code": outcome.exit_code,
        "tokens_per_s_measured": case.tokens_per_s_per_device,
        "tokens_per_s_predicted": round(prediction["tokens_per_s_per_device"], 1)
        if prediction else None,
        "tokens_per_s_error_pct": round(100 * speed, 1) if speed is not None else None,
        "memory_measured_gib": case.memory_gib,
        "memory_predicted_gib": round(prediction["memory_gib_per_device"], 1)
        if prediction else None,
        "memory_error_pct": round(100 * memory, 1) if memory is not None else None,
        "message": outcome.message or None,
    }


def evaluate(set_names: list[str], limit: int | None = None) -> list[Outcome]:
    """Run every case of the named sets (the first `limit` of each when given)."""
    accepted = accepted_options()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="suan-accuracy-") as folder:
        for name in set_names:
            cases = [case for path in SETS[name] for case in read_cases(path)][:limit]
            outcomes += [run_case(case, name, Path(folder), accepted) for case in cases]
    return outcomes


def report(outcomes: list[Outcome], cpu_s: float, with_rows: bool) -> dict[str, Any]:
    """The benchmark's JSON document."""
    refused = [{"set": o.set_name, "row": o.case.row_id, "kind": o.case.kind,
                "model": o.case.model, "message": o.message}
               for o in outcomes if o.exit_code != 0]
    by_set = defaultdict(list)
    for outcome in outcomes:
        by_set[outcome.set_name].append(outcome)
    document: dict[str, Any] = {
        "benchmark": "planner_accuracy",
        "path": "suan plan estimate --json (suan.cli.main.app, in-process)",
        "overall": summarise(outcomes),
        "by_set": {name: summarise(members) for name, members in by_set.items()},
        "by_kind": {kind: summarise(o for o in outcomes if o.case.kind == kind)
                    for kind in sorted({o.case.kind for o in outcomes})},
        "by_source": {source: summarise(o for o in outcomes if o.case.source == source)
                      for source in sorted({o.case.source for o in outcomes})},
        "groups": grouped(outcomes),
        "validation_groups": grouped(by_set.get("validation", [])),
        "holdout_groups": grouped(by_set.get("holdout", [])),
        "refused": {"count": len(refused), "rows": refused},
        "cpu_seconds": round(cpu_s, 2),
    }
    if with_rows:
        document["rows"] = [row_report(outcome) for outcome in outcomes]
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=[*SETS, "all"], default="all",
                        help="which rows to score (default: validation and hold-out)")
    parser.add_argument("--rows", action="store_true", help="also print every row's result")
    args = parser.parse_args()
    names = list(SETS) if args.set == "all" else [args.set]
    started = time.process_time()
    outcomes = evaluate(names)
    print(json.dumps(report(outcomes, time.process_time() - started, args.rows), indent=2))


if __name__ == "__main__":
    main()
