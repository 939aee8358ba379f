"""The one way every list command prints: a table on a terminal, tab-separated lines in a pipe,
or the records as JSON or YAML (`--output/-o`).

On a terminal (`table`, `wide`) the rows are a rich table (its first column, the id or name,
never wrapped); when stdout is not a terminal each
row is one line, its cells separated by tabs and never cut or wrapped, under a header line
(left out with `--no-header`, like `squeue --noheader`), so that `suan jobs | grep`, `cut -f1`
and `awk -F'\\t'` see whole ids. `wide` adds the columns a listing keeps for it. `json` and
`yaml` print the records the API gave, whatever the terminal. The old `--json` flag is an
alias of `-o json`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's safe dumper where PyYAML was built with it (about 3 times faster on a
listing of 10,000 jobs), else PyYAML's."""


class Output(StrEnum):
    """What `--output` prints."""

    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table (the default), wide (more columns), json or yaml. In a pipe a table is "
        "one tab-separated line per row, never cut or wrapped.",
    ),
]
NoHeaderOption = Annotated[
    bool, typer.Option("--no-header", help="Leave out the header line of a table.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON (same as -o json).")]


@dataclass(frozen=True)
class Column:
    """A column: its header, and whether only `wide` shows it."""

    header: str
    wide: bool = False


@dataclass
class Listing:
    """What a list command shows: the columns, one row of cells per record, and the records
    (the API's answer) that `json` and `yaml` print."""

    columns: Sequence[Column]
    rows: list[Sequence[Any]] = field(default_factory=list)
    records: Any = None
    title: str = ""


def chosen(output: Output | None, as_json: bool = False) -> Output:
    """The output asked for: `--output`, else JSON for `--json`, else a table."""
    if output is not None and as_json and output is not Output.JSON:
        raise typer.BadParameter(f"--json contradicts --output {output.value}")
    return output or (Output.JSON if as_json else Output.TABLE)


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (a table), not a pipe or file (tab-separated lines)."""
    return sys.stdout.isatty()


def print_records(records: Any, output: Output) -> bool:
    """Print `records` as JSON or YAML when `output` is one of them; say whether it was."""
    if output is Output.JSON:
        typer.echo(json.dumps(records, indent=2, ensure_ascii=False))
    elif output is Output.YAML:
        text = yaml.dump(records, Dumper=YAML_DUMPER, sort_keys=False, allow_unicode=True)
        typer.echo(text.rstrip("\n"))
    else:
        return False
    return True


def show(listing: Listing, output: Output, no_header: bool = False) -> None:
    """Print `listing` as `output` asks (see the module docstring)."""
    if print_records(listing.records, output):
        return
    wanted = [i for i, c in enumerate(listing.columns) if output is Output.WIDE or not c.wide]
    headers = [listing.columns[i].header for i in wanted]
    rows = [[_cell(row[i]) for i in wanted] for row in listing.rows]
    if not stdout_is_terminal():
        lines = rows if no_header else [headers, *rows]
        for cells in lines:
            sys.stdout.write("\t".join(_one_line(cell) for cell in cells) + "\n")
        sys.stdout.flush()
        return
    table = Table(box=None, header_style="bold", show_header=not no_header,
                  title=escape(listing.title) or None, title_justify="left")
    for index, header in enumerate(headers):
        table.add_column(escape(header), overflow="fold", no_wrap=index == 0)
    for cells in rows:
        table.add_row(*(escape(cell) for cell in cells))
    Console().print(table)


PIPE_WIDTH = 100_000
"""The width a console takes when stdout is not a terminal: wider than any line Suan prints,
so that a pipe or a file never gets a row or a message wrapped."""


def output_console() -> Console:
    """The console for text and tables that are not a listing (`describe`, `schedule`, the
    simulator's reports): the terminal's width on a terminal, else never wrapping."""
    if stdout_is_terminal():
        return Console()
    return Console(width=PIPE_WIDTH, soft_wrap=True)


def note(text: str, output: Output = Output.TABLE) -> None:
    """A line about a listing (how many more): under a table on a terminal, else on stderr,
    so that stdout stays one row per line, or one JSON or YAML document."""
    on_table = output in (Output.TABLE, Output.WIDE)
    typer.echo(text, err=not (on_table and stdout_is_terminal()))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _one_line(cell: str) -> str:
    """A cell that cannot split its row: tabs and line breaks become spaces."""
    return " ".join(cell.replace("\t", " ").splitlines()) if cell else cell
