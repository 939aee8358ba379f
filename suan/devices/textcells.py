"""Reading the box-drawn tables that accelerator tools print, cell by cell, without guessing.

The Chinese vendors' tools (`npu-smi`, `cnmon`, `xpu-smi`, `ixsmi`, `mx-smi`, `mthreads-gmi`,
`hy-smi`) print fixed tables: rows of cells between `|` bars, rules of `+-=` between rows.
These helpers split a row into cells and read numbers with their units out of a cell; every
one raises `UnexpectedOutput` quoting the text it could not read, so a parser built on them
never turns an unfamiliar value into a number.
"""

from __future__ import annotations

import re

from suan.devices.model import Signal, UnexpectedOutput

QUOTE_CHARS = 100
"""How much of an unrecognised line an error quotes: enough to show a table row, short enough
to keep the operator's message on one screen line."""

NOT_AVAILABLE = frozenset({"N/A", "NA"})
"""The words the tools print for a value they cannot read."""

_RULE = re.compile(r"^[\s+\-=|]+$")
_NUMBER_WITH_UNIT = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([A-Za-z%]*)$")
_SIDE = r"(N/A|NA|-?\d+(?:\.\d+)?\s*[A-Za-z%]*)"
_PAIR = re.compile(rf"^{_SIDE}\s*/\s*{_SIDE}$")


def unexpected(what: str, line: str) -> UnexpectedOutput:
    """The error for a line the parser does not recognise: `what` it expected, and the line."""
    text = line.strip()
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 3] + "..."
    return UnexpectedOutput(f"{what}: {text!r}")


def is_rule(line: str) -> bool:
    """True for a table rule (`+---+`, `|====|`, `----`): bars, dashes, pluses, equals only."""
    return bool(line.strip()) and bool(_RULE.match(line))


def cells(line: str, count: int) -> list[str]:
    """The `count` cells of a row `| a | b | c |`, stripped; raises unless the row is bounded
    by bars and has exactly `count` cells."""
    text = line.strip()
    if not (text.startswith("|") and text.endswith("|")):
        raise unexpected(f"expected a table row of {count} cells", line)
    parts = [part.strip() for part in text[1:-1].split("|")]
    if len(parts) != count:
        raise unexpected(f"expected a table row of {count} cells", line)
    return parts


def quantity(text: str, unit: str, line: str) -> float | None:
    """The number in `text` (`42`, `42C`, `85W`, `0%`, `116MiB`); `unit` is the only suffix
    accepted (`""` for none; a bare number is always accepted). None when the tool printed
    N/A or NA. Anything else raises, quoting `line`."""
    text = text.strip()
    if text in NOT_AVAILABLE:
        return None
    match = _NUMBER_WITH_UNIT.match(text)
    if match is None or match.group(2) not in ("", unit):
        raise unexpected(f"expected a number in {unit or 'no unit'}, got {text!r}", line)
    return float(match.group(1))


def pair(text: str, unit: str, line: str) -> tuple[float | None, float | None]:
    """The two quantities of `used / total` (either side may carry `unit` or be N/A)."""
    match = _PAIR.match(text.strip())
    if match is None:
        raise unexpected(f"expected 'used / total', got {text.strip()!r}", line)
    return quantity(match.group(1), unit, line), quantity(match.group(2), unit, line)


def whole(text: str, field: str, line: str) -> int:
    """A non-negative integer such as a device index; raises naming `field` otherwise."""
    text = text.strip()
    if not text.isdigit():
        raise unexpected(f"expected a whole number for {field}, got {text!r}", line)
    return int(text)


def words(line: str, count: int) -> list[list[str]]:
    """The whitespace-separated words of each of the `count` cells of a row."""
    return [cell.split() for cell in cells(line, count)]


def header_at(lines: list[str], header: list[list[list[str]]], tool: str) -> int:
    """The index of the first of the header rows in `lines`: consecutive rows whose cells hold
    exactly the words of `header` (one list of cells per row, each cell a list of words, where
    a cell given as a list of lists accepts any of them). Raises naming `tool` when absent."""
    count = len(header[0])
    for at in range(len(lines) - len(header) + 1):
        if all(_row_matches(lines[at + k], row, count) for k, row in enumerate(header)):
            return at
    raise unexpected(f"no {tool} table header", lines[0] if lines else "")


def _row_matches(line: str, row: list, count: int) -> bool:
    try:
        found = words(line, count)
    except UnexpectedOutput:
        return False
    for have, want in zip(found, row, strict=True):
        choices = want if want and isinstance(want[0], list) else [want]
        if have not in choices:
            return False
    return True


def rows_until(lines: list[str], stop: str) -> list[str]:
    """The rows of a table body (rules skipped) up to the first line containing `stop`; what
    follows `stop` is not read but must still be table rows or rules."""
    body: list[str] = []
    for at, line in enumerate(lines):
        if stop in line:
            for rest in lines[at:]:
                text = rest.strip()
                if text and not is_rule(rest) and not (text.startswith("|") and text.endswith("|")):
                    raise unexpected(f"expected the table after {stop!r}", rest)
            return body
        if line.strip() and not is_rule(line):
            body.append(line)
    return body


def present(measured: list[tuple[str, float | None, str]]) -> tuple[Signal, ...]:
    """Signals from `(name, value, detail)` triples, leaving out the values the tool printed
    as N/A (None): a missing reading is no reading, never a zero."""
    return tuple(Signal(name, value, words) for name, value, words in measured if value is not None)
