"""Node lists of public GPU-cluster traces, read into `Cluster`s.

- `read_openb_nodes`: Alibaba PAI "openb" (cluster-trace-gpu-v2023) `openb_node_list_*.csv`,
  columns `sn,cpu_milli,memory_mib,gpu,model`. An empty `model` with `gpu` 0 is a CPU-only node.
- `read_pai_machines`: Alibaba PAI v2020 `pai_machine_spec.csv` (with its header line),
  columns `machine,gpu_type,cap_cpu,cap_mem,cap_gpu`; `cap_cpu` is cores, `cap_mem` is read as
  GiB, and `gpu_type` `CPU` is a CPU-only machine.

GPU model codes (`V100M16`, `G2`, `MISC`, ...) resolve through the catalog's aliases to
canonical names, and each node's link domains come from the catalog's `domain_layout`. The
traces publish no network topology, so every topology label (zone, block, rack, supernode) is
left empty: no two nodes count as close. Extra columns are ignored. A bad row raises
`SpecError` naming the file, the line number (the header is line 1) and the column.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Cluster, Node
from suan.errors import FieldProblem, SpecError

OPENB_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
PAI_COLUMNS = ("machine", "gpu_type", "cap_cpu", "cap_mem", "cap_gpu")
PAI_CPU_ONLY = "CPU"
MAX_PROBLEMS = 20
"""Stop collecting after this many bad rows; the error reports the first ones."""


class _RowError(Exception):
    """One bad cell: the column and what was wrong with it."""

    def __init__(self, column: str, message: str, allowed: str = ""):
        super().__init__(message)
        self.column = column
        self.message = message
        self.allowed = allowed


@dataclass(frozen=True)
class _Row:
    """One CSV row with its line number; cells are read through typed accessors."""

    line: int
    cells: dict[str, str]

    def text(self, column: str) -> str:
        return (self.cells.get(column) or "").strip()

    def integer(self, column: str) -> int:
        """A whole number >= 0 (a float cell like '96.0' is accepted when it is whole)."""
        text = self.text(column)
        try:
            value = float(text)
        except ValueError:
            raise _RowError(column, f"not a number: {text!r}", "a whole number >= 0") from None
        if value < 0 or not value.is_integer():
            raise _RowError(column, f"not a whole number >= 0: {text!r}", "a whole number >= 0")
        return int(value)


def read_openb_nodes(
    path: str | Path, *, name: str | None = None, catalog: Catalog | None = None
) -> Cluster:
    """The nodes of an openb node list, in file order, named by `sn`.

    `cpu_milli` and `memory_mib` are taken as they are; `gpu` devices of `model` (a catalog
    name or alias). The cluster is named `name`, by default the file's stem.
    """
    catalog = catalog or default_catalog()

    def node(row: _Row) -> Node:
        return _make_node(row, catalog, name_column="sn", model_column="model",
                          devices_column="gpu", cpu_milli=row.integer("cpu_milli"),
                          memory_mib=row.integer("memory_mib"), cpu_only="")

    return _read(Path(path), OPENB_COLUMNS, node, name)


def read_pai_machines(
    path: str | Path, *, name: str | None = None, catalog: Catalog | None = None
) -> Cluster:
    """The machines of the PAI v2020 machine spec, in file order, named by `machine`.

    `cap_cpu` cores become millicores; `cap_mem` GB are read as GiB (the values are 384 and
    512, sizes of installed memory) and converted to MiB; `cap_gpu` devices of `gpu_type`.
    """
    catalog = catalog or default_catalog()

    def node(row: _Row) -> Node:
        return _make_node(row, catalog, name_column="machine", model_column="gpu_type",
                          devices_column="cap_gpu", cpu_milli=row.integer("cap_cpu") * 1000,
                          memory_mib=row.integer("cap_mem") * 1024, cpu_only=PAI_CPU_ONLY)

    return _read(Path(path), PAI_COLUMNS, node, name)


def _make_node(
    row: _Row, catalog: Catalog, *, name_column: str, model_column: str, devices_column: str,
    cpu_milli: int, memory_mib: int, cpu_only: str,
) -> Node:
    """A node from one row. `cpu_only` is the model text that marks a CPU-only node."""
    node_name = row.text(name_column)
    if not node_name:
        raise _RowError(name_column, "empty node name", "a non-empty name")
    model = row.text(model_column)
    devices = row.integer(devices_column)
    if model in ("", cpu_only):
        if devices:
            raise _RowError(devices_column, f"{devices} GPUs on a CPU-only node ({model!r})",
                            "0, or name a GPU model")
        return Node(node_name, None, 0, (), cpu_milli=cpu_milli, memory_mib=memory_mib)
    accel = catalog.find(model)
    if accel is None:
        raise _RowError(model_column, f"unknown accelerator {model!r}",
                        ", ".join(sorted(catalog.names())) + " (or an alias)")
    if devices < 1:
        raise _RowError(devices_column, f"no GPUs on a {model} node", "at least 1")
    return Node(node_name, accel.name, devices, accel.domain_layout(devices),
                cpu_milli=cpu_milli, memory_mib=memory_mib)


def _read(
    path: Path, columns: tuple[str, ...], make: Callable[[_Row], Node], name: str | None
) -> Cluster:
    """Read every row through `make`, collecting problems; raise them all as one SpecError."""
    nodes: list[Node] = []
    first_line: dict[str, int] = {}
    problems: list[FieldProblem] = []
    for row in _rows(path, columns):
        try:
            node = make(row)
        except _RowError as exc:
            where = f"line {row.line}, column {exc.column}"
            problems.append(FieldProblem(where, exc.message, exc.allowed))
        else:
            if node.name in first_line:
                problems.append(FieldProblem(
                    f"line {row.line}, column {columns[0]}",
                    f"duplicate node name {node.name!r} (first on line {first_line[node.name]})"))
            else:
                first_line[node.name] = row.line
                nodes.append(node)
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise SpecError(str(path), problems)
    return Cluster(nodes, name or path.stem)


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[_Row]:
    """Rows after the header, with line numbers; SpecError for a missing file or column."""
    try:
        handle = path.open(newline="")
    except FileNotFoundError:
        raise SpecError(str(path), [FieldProblem("", "file not found")]) from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in columns if column not in header]
        if missing:
            raise SpecError(str(path), [FieldProblem(
                "line 1", f"missing column(s) {', '.join(missing)} in header {header}",
                ", ".join(columns))])
        for cells in reader:
            yield _Row(reader.line_num, cells)
