"""Trace readers: job lists of public GPU-cluster traces, read into `TraceJob`s.

Formats (`read_trace(path, fmt)`; files ending in `.gz` are read through gzip):

- `philly`: Microsoft Philly as processed by Pollux (`philly.csv`: `timestamp,duration,
  num_gpus,gpu_time,cluster`) or the derived sorted copy (`philly_jobs_sorted.csv.gz`:
  `job_id,submit_time_s,duration_s,num_gpus,...,vc,...`). Both give the same jobs: sorted by
  (submit time, row), numbered from 0, submit times in seconds from the first kept job, the
  virtual cluster (VC) as the queue. `vcs`, `start` and `end` select jobs.
- `csv`: the generic format, `job_id,submit_time,duration,num_gpus[,gpu_type,user,queue,
  priority,series,checkpoint_cost_s,checkpoint_interval_s,time_limit,dependency,array]`
  (header required; seconds; extra columns are ignored; the batch columns are read by
  `suan.sim.batch_trace`, an `array` row becoming one job per member).
- `tiresias`: `job_id,num_gpu,submit_time,iterations,model_name,duration,interval`.
- `gavel`: Gavel's tab-separated 10-field trace; run times per GPU type come from its
  throughput table (`simulation_throughputs.json`), `total_steps / throughput`.

A bad row raises `SpecError` naming the file and the line (the header is line 1); with
`skip_bad=True` it is skipped and counted in `Trace.skipped` instead.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from suan.errors import FieldProblem, SpecError
from suan.sim.batch_trace import BadRow, BatchColumns
from suan.sim.workload import BURST_GAP_S, TraceJob, burst_series

FORMATS = ("philly", "csv", "tiresias", "gavel")
MAX_PROBLEMS = 20
PHILLY_TIME = "%Y-%m-%d %H:%M:%S"
GAVEL_TYPES = {"v100": "V100", "p100": "P100", "k80": "K80"}
GAVEL_FIELDS = 10


@dataclass
class Trace:
    """The jobs read from a file, and how many bad rows were skipped."""

    jobs: list[TraceJob]
    source: str
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def open_text(path: Path) -> TextIO:
    """A text handle on a plain or gzipped file; SpecError when it is missing."""
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), newline="")
        return path.open(newline="")
    except FileNotFoundError:
        raise SpecError(str(path), [FieldProblem("", "file not found")]) from None


def _number(cells: dict[str, str], column: str, *, whole: bool = False, low: float = 0) -> float:
    text = (cells.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise BadRow(f"column {column}: not a number: {text!r}") from None
    if value != value or value < low or (whole and not value.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise BadRow(f"column {column}: {text!r} is not {kind} >= {low:g}")
    return value


class _Collector:
    """Turns rows into jobs, collecting or skipping bad rows."""

    def __init__(self, source: str, skip_bad: bool):
        self.source = source
        self.skip_bad = skip_bad
        self.problems: list[FieldProblem] = []
        self.skipped = 0
        self.notes: list[str] = []

    def bad(self, line: int, message: str) -> None:
        if self.skip_bad:
            self.skipped += 1
            if len(self.notes) < MAX_PROBLEMS:
                self.notes.append(f"line {line}: {message}")
            return
        self.problems.append(FieldProblem(f"line {line}", message))
        if len(self.problems) >= MAX_PROBLEMS:
            self.finish()

    def finish(self) -> None:
        if self.problems:
            raise SpecError(self.source, self.problems)


def _dict_rows(handle: TextIO, source: str, required: tuple[str, ...]
               ) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(handle)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in required if c not in header]
    if missing:
        raise SpecError(source, [FieldProblem(
            "line 1", f"missing column(s) {', '.join(missing)} in header {header}",
            ", ".join(required))])
    for cells in reader:
        yield reader.line_num, cells


def _read_rows(path: Path, required: tuple[str, ...],
               make: Callable[[dict[str, str]], TraceJob | list[TraceJob]],
               skip_bad: bool) -> Trace:
    """The jobs of every row (`make` gives one job, or a list: an array's members)."""
    collector = _Collector(str(path), skip_bad)
    jobs: list[TraceJob] = []
    seen: dict[str, int] = {}
    with open_text(path) as handle:
        for line, cells in _dict_rows(handle, str(path), required):
            try:
                made = make(cells)
                row_jobs = made if isinstance(made, list) else [made]
                for job in row_jobs:
                    if job.job_id in seen:
                        raise BadRow(f"duplicate job_id {job.job_id!r} (first on line "
                                     f"{seen[job.job_id]})")
            except BadRow as exc:
                collector.bad(line, str(exc))
                continue
            seen.update((job.job_id, line) for job in row_jobs)
            jobs.extend(row_jobs)
    collector.finish()
    return Trace(jobs, str(path), collector.skipped, collector.notes)


# ---------------------------------------------------------------------- generic CSV
GENERIC = ("job_id", "submit_time", "duration", "num_gpus")


def read_generic(path: str | Path, *, skip_bad: bool = False) -> Trace:
    """The generic CSV: `job_id,submit_time,duration,num_gpus[,gpu_type,user,queue,priority]`,
    optionally a `series` column (a job's series in its queue: a sweep, an array), and the
    batch columns `time_limit`, `dependency`, `array` (`suan.sim.batch_trace`)."""
    batch = BatchColumns()

    def make(cells: dict[str, str]) -> TraceJob | list[TraceJob]:
        job_id = (cells.get("job_id") or "").strip()
        if not job_id:
            raise BadRow("column job_id: empty")
        job = TraceJob(
            job_id, _number(cells, "submit_time"), _number(cells, "duration"),
            int(_number(cells, "num_gpus", whole=True, low=1)),
            gpu_type=(cells.get("gpu_type") or "").strip() or None,
            user=(cells.get("user") or "").strip(),
            queue=(cells.get("queue") or "").strip() or "default",
            priority=int(_number(cells, "priority", whole=True, low=-(10**9)))
            if (cells.get("priority") or "").strip() else 0,
            series=(cells.get("series") or "").strip(),
            checkpoint_cost_s=_optional(cells, "checkpoint_cost_s"),
            checkpoint_interval_s=_optional(cells, "checkpoint_interval_s"),
        )
        return batch.expand(job, cells)

    return _read_rows(Path(path), GENERIC, make, skip_bad)


def _optional(cells: dict[str, str], column: str) -> float | None:
    """A positive number from an optional column, None when the column is absent or empty."""
    if not (cells.get(column) or "").strip():
        return None
    value = _number(cells, column)
    if value <= 0:
        raise BadRow(f"column {column}: must be > 0")
    return value


# ---------------------------------------------------------------------- Tiresias
TIRESIAS = ("job_id", "num_gpu", "submit_time", "duration")


def read_tiresias(path: str | Path, *, skip_bad: bool = False) -> Trace:
    """Tiresias's `job_id,num_gpu,submit_time,iterations,model_name,duration,interval`."""

    def make(cells: dict[str, str]) -> TraceJob:
        return TraceJob(
            (cells.get("job_id") or "").strip(), _number(cells, "submit_time"),
            _number(cells, "duration"), int(_number(cells, "num_gpu", whole=True, low=1)),
        )

    return _read_rows(Path(path), TIRESIAS, make, skip_bad)


# ---------------------------------------------------------------------- Philly
def read_philly(path: str | Path, *, vcs: set[str] | None = None, start: str | None = None,
                end: str | None = None, skip_bad: bool = False,
                series_gap_s: float | None = BURST_GAP_S) -> Trace:
    """Philly jobs (either file), optionally only those of `vcs` submitted in
    [`start`, `end`] (`YYYY-MM-DD HH:MM:SS`, inclusive). The file names no users or jobs:
    each job's series is its submission burst (`burst_series` with `series_gap_s`; None for
    no series)."""
    source = Path(path)
    collector = _Collector(str(source), skip_bad)
    rows: list[tuple[datetime, int, float, int, str]] = []
    low = datetime.fromisoformat(start) if start else None
    high = datetime.fromisoformat(end) if end else None
    with open_text(source) as handle:
        header = handle.readline()
        handle.seek(0)
        sorted_form = header.startswith("job_id")
        required = (("job_id", "duration_s", "num_gpus", "vc", "submit_timestamp")
                    if sorted_form else ("timestamp", "duration", "num_gpus", "cluster"))
        for line, cells in _dict_rows(handle, str(source), required):
            try:
                row = _philly_row(cells, sorted_form, line)
            except BadRow as exc:
                collector.bad(line, str(exc))
                continue
            if vcs and row[4] not in vcs:
                continue
            if (low and row[0] < low) or (high and row[0] > high):
                continue
            rows.append(row)
    collector.finish()
    rows.sort(key=lambda r: (r[0], r[1]))
    origin = rows[0][0] if rows else None
    jobs = [
        TraceJob(str(rank), (when - origin).total_seconds() if origin else 0.0, max(1.0, dur),
                 gpus, queue=vc)
        for rank, (when, _, dur, gpus, vc) in enumerate(rows)
    ]
    if series_gap_s is not None:
        jobs = burst_series(jobs, series_gap_s)
    return Trace(jobs, str(source), collector.skipped, collector.notes)


def _philly_row(cells: dict[str, str], sorted_form: bool, line: int
                ) -> tuple[datetime, int, float, int, str]:
    stamp_column = "submit_timestamp" if sorted_form else "timestamp"
    text = (cells.get(stamp_column) or "").strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadRow(f"column {stamp_column}: not a time {PHILLY_TIME}: {text!r}") from None
    duration = _number(cells, "duration_s" if sorted_form else "duration")
    gpus = int(_number(cells, "num_gpus", whole=True, low=1))
    vc = (cells.get("vc" if sorted_form else "cluster") or "").strip() or "default"
    order = int(_number(cells, "orig_row", whole=True)) if sorted_form else line - 2
    return when, order, duration, gpus, vc


# ---------------------------------------------------------------------- Gavel
def read_gavel(path: str | Path, throughputs: str | Path | None = None, *,
               skip_bad: bool = False) -> Trace:
    """Gavel's trace; run time on type T = total_steps / throughput[T][(job_type, scale)].

    `throughputs` defaults to `simulation_throughputs.json` beside the trace. The reference
    duration is the V100 one; per-type durations go into `TraceJob.durations`.
    """
    source = Path(path)
    table_path = Path(throughputs) if throughputs else source.with_name(
        "simulation_throughputs.json")
    try:
        table = json.loads(table_path.read_text())
    except FileNotFoundError:
        raise SpecError(str(table_path), [FieldProblem("", "throughput table not found")]
                        ) from None
    collector = _Collector(str(source), skip_bad)
    jobs: list[TraceJob] = []
    with open_text(source) as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                jobs.append(_gavel_job(text.rstrip("\n").split("\t"), len(jobs), table))
            except BadRow as exc:
                collector.bad(line, str(exc))
    collector.finish()
    return Trace(jobs, str(source), collector.skipped, collector.notes)


def _gavel_job(fields: list[str], index: int, table: dict[str, dict[str, dict[str, object]]]
               ) -> TraceJob:
    if len(fields) != GAVEL_FIELDS:
        raise BadRow(f"{len(fields)} tab-separated fields, expected {GAVEL_FIELDS}")
    job_type = fields[0]
    cells = {"total_steps": fields[5], "scale_factor": fields[6], "arrival": fields[9]}
    steps = _number(cells, "total_steps", low=1)
    scale = int(_number(cells, "scale_factor", whole=True, low=1))
    key = f"('{job_type}', {scale})"
    durations: dict[str, float] = {}
    for gavel_name, catalog_name in GAVEL_TYPES.items():
        entry = table.get(gavel_name, {}).get(key)
        rate = entry.get("null") if isinstance(entry, dict) else None
        if isinstance(rate, int | float) and rate > 0:
            durations[catalog_name] = steps / rate
    if "V100" not in durations:
        raise BadRow(f"no V100 throughput for {key} in the throughput table")
    return TraceJob(str(index), _number(cells, "arrival"), durations["V100"], scale,
                    durations=durations)


# ---------------------------------------------------------------------- dispatch
def read_trace(path: str | Path, fmt: str = "csv", *, skip_bad: bool = False) -> Trace:
    """Read a job trace in one of `FORMATS`."""
    readers: dict[str, Callable[..., Trace]] = {
        "philly": read_philly, "csv": read_generic, "tiresias": read_tiresias,
        "gavel": read_gavel,
    }
    if fmt not in readers:
        raise SpecError("--format", [FieldProblem("format", f"unknown {fmt!r}",
                                                  ", ".join(FORMATS))])
    return readers[fmt](path, skip_bad=skip_bad)
