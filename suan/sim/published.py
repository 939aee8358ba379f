"""Peers' figures that the reproductions print beside ours, read from one data file.

`suan/sim/data/published.csv` holds one figure a row: the peer, its policy, the trace (a
path under the shared folder's `peer-inputs/`), the cluster (our shorthand, or the node-count
file of a per-VC setup), the metric, the value, and its source (what produced it and where it
is recorded) with a URL. Helios's and FGD's published figures are not here: the
reproductions read them from the shared folder's own files
(`traces/philly/helios_sc21_philly_published_results.csv`,
`traces/alibaba_pai_openb_v2023/fgd_atc23_published/`), whose sources `traces/README.md`
gives.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from suan.errors import FieldProblem, SpecError

DATA = Path(__file__).with_name("data") / "published.csv"
COLUMNS = ("peer", "policy", "trace", "cluster", "metric", "value", "source", "url")


@dataclass(frozen=True)
class Figure:
    """One peer's figure for one setup, and where it comes from."""

    peer: str
    policy: str
    trace: str
    cluster: str
    metric: str
    value: float
    source: str
    url: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.peer, self.policy, self.trace, self.cluster, self.metric)


def _figure(row: dict[str, str], line: int, source: str) -> Figure:
    cells = {column: (row.get(column) or "").strip() for column in COLUMNS}
    problems = [FieldProblem(f"line {line}: {column}", "empty") for column, text in
                cells.items() if not text]
    if not cells["url"].startswith("https://") and cells["url"]:
        problems.append(FieldProblem(f"line {line}: url", f"not an https URL: {cells['url']!r}"))
    try:
        value = float(cells["value"])
    except ValueError:
        problems.append(FieldProblem(f"line {line}: value",
                                     f"not a number: {cells['value']!r}"))
        value = 0.0
    if problems:
        raise SpecError(source, problems)
    return Figure(**{**cells, "value": value})


def read_figures(path: Path = DATA) -> dict[tuple[str, str, str, str, str], Figure]:
    """Every figure of the file by (peer, policy, trace, cluster, metric); SpecError naming
    the line and column of an empty cell, a value that is not a number, a URL that is not
    https, a missing column or a figure listed twice."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or ())]
        if missing:
            raise SpecError(str(path), [FieldProblem("header", f"missing column {column}")
                                        for column in missing])
        figures: dict[tuple[str, str, str, str, str], Figure] = {}
        for line, row in enumerate(reader, start=2):
            figure = _figure(row, line, str(path))
            if figure.key in figures:
                raise SpecError(str(path), [FieldProblem(f"line {line}",
                                                         f"listed twice: {figure.key}")])
            figures[figure.key] = figure
    return figures


@cache
def _shipped() -> dict[tuple[str, str, str, str, str], Figure]:
    return read_figures(DATA)


def published(peer: str, policy: str, trace: str, cluster: str,
              metric: str = "avg_jct_s") -> Figure:
    """The shipped figure of `peer`'s `policy` on `trace` and `cluster`; KeyError naming the
    setup when the file has none."""
    key = (peer, policy, trace, cluster, metric)
    try:
        return _shipped()[key]
    except KeyError:
        raise KeyError(f"no published figure for {key} in {DATA}") from None
