"""The Simulator page: a `suan sim replay --json` or `suan sim pack --json` document uploaded
by the browser (never a path on the server), shown as tables and charts.

A replay document compares policies (`policies`: name -> figures), a pack document placement
strategies (`placements`: name -> figures); both are read the same way: one table row per
entry with its numeric figures, one bar chart per headline figure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from suan.errors import SuanError
from suan.web.charts import bar_chart

MAX_UPLOAD_BYTES = 16 << 20
"""The largest document accepted: a replay of many policies is well under 1 MiB; 16 MiB leaves
room for per-seed lists of long pack runs while bounding the server's memory per upload."""
KINDS = {"policies": "replay", "placements": "pack"}
HEADLINES = {
    "replay": ("avg_jct_s", "avg_queue_s", "p95_queue_s", "gpu_utilization", "makespan_s"),
    "pack": ("unallocated_gpu_pct_at_100", "fragmented_gpus_at_100", "allocated_gpu_pct_final"),
}
MAX_CHARTS = 4


class BadDocument(SuanError):
    """An upload that is not a `sim replay` / `sim pack` JSON document (the words say why)."""


@dataclass
class SimReport:
    """What the page shows of a document."""

    kind: str
    about: dict[str, Any]
    columns: list[str]
    rows: list[dict[str, Any]]
    charts: list[str] = field(default_factory=list)


def parse_document(data: bytes) -> dict[str, Any]:
    """The JSON object in `data`; BadDocument naming what is wrong."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadDocument(f"the file is larger than {MAX_UPLOAD_BYTES >> 20} MiB")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadDocument(f"the file is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadDocument("the file holds JSON but not an object")
    return document


def _numbers(figures: dict[str, Any]) -> dict[str, float]:
    return {key: value for key, value in figures.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


def sim_report(document: dict[str, Any]) -> SimReport:
    """Tables and charts of a replay or pack document; BadDocument when it is neither."""
    key = next((k for k in KINDS if isinstance(document.get(k), dict)), None)
    if key is None or not document[key]:
        raise BadDocument("no `policies` (sim replay --json) or `placements` (sim pack --json) "
                          "object with entries in the file")
    entries = document[key]
    if not all(isinstance(figures, dict) for figures in entries.values()):
        raise BadDocument(f"every entry of `{key}` must be an object of figures")
    kind = KINDS[key]
    numbers = {name: _numbers(figures) for name, figures in entries.items()}
    columns = sorted({column for figures in numbers.values() for column in figures})
    rows = [{"name": name, **figures} for name, figures in numbers.items()]
    about = {k: v for k, v in document.items()
             if k != key and isinstance(v, str | int | float) and not isinstance(v, bool)}
    charted = [c for c in HEADLINES[kind] if c in columns] or columns
    charts = [bar_chart(column, {name: figures[column] for name, figures in numbers.items()
                                 if column in figures})
              for column in charted[:MAX_CHARTS]]
    return SimReport(kind, about, columns, rows, [c for c in charts if c])
