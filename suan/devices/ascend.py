"""Huawei Ascend NPUs: health read from `npu-smi info`.

`npu-smi info` prints one block of two rows per chip:

    | NPU   Name           | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
    | Chip                 | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
    | 0     910B2C         | OK            | 89.9        53                0    / 0             |
    | 0                    | 0000:5A:00.0  | 0           0    / 0          3317 / 65536         |

then a process table, which is not read. The columns of the third cell differ between
releases and chips (the 310 has no HBM or hugepages column; the 310 boards carry several chips
and add a Device column), so they are read by the names in the header rows, and a header name
this parser does not know is an error rather than a guess.

The device index is the Device column where the tool prints one (a 310 board carries four
chips under one NPU id), else the NPU id; a chip other than 0 with no Device column is an
error, since nothing printed tells it apart from chip 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from suan.devices.model import DeviceReading, Signal
from suan.devices.textcells import cells, is_rule, quantity, unexpected, whole

TOOL: tuple[str, ...] = ("npu-smi", "info")

SIGNALS: dict[str, str] = {
    "health": "Health (the tool's word: OK, Warning, Alarm, Critical or UNKNOWN)",
    "temperature_c": "Temp(C)",
    "power_w": "Power(W) (absent when the tool prints NA)",
    "utilization_pct": "AICore(%)",
    "memory_used_mib": "HBM-Usage(MB) used where the chip has HBM, else Memory-Usage(MB) used",
}
"""The signals this parser emits, each with the `npu-smi info` field it is read from. The
tool's MB are mebibytes (a 64 GiB HBM prints as 65536)."""

HEALTH_WORDS = frozenset({"OK", "Warning", "Alarm", "Critical", "UNKNOWN"})
"""The five health states the npu-smi reference documents (OK normal, Warning minor alarm,
Alarm major alarm, Critical critical alarm, UNKNOWN the chip is absent or not started); any
other word is unexpected output."""

KNOWN_FIELDS = frozenset(
    {
        "Power(W)",
        "Temp(C)",
        "Hugepages-Usage(page)",
        "AICore(%)",
        "Memory-Usage(MB)",
        "HBM-Usage(MB)",
    }
)
"""The column names of the third cell that this parser reads."""

_FIELD_NAME = re.compile(r"[A-Za-z-]+\([^)]*\)")
_VALUE = re.compile(
    r"(N/A|NA|-?\d+(?:\.\d+)?)\s*/\s*(N/A|NA|-?\d+(?:\.\d+)?)|(\S+)",
)


@dataclass(frozen=True)
class _Layout:
    """What the two header rows say: the value columns of each row, and whether the second
    row names a Device column."""

    first_fields: tuple[str, ...]
    second_fields: tuple[str, ...]
    has_device: bool


def parse(text: str) -> list[DeviceReading]:
    """The chips `npu-smi info` printed in `text`, in the tool's order. Raises
    `UnexpectedOutput` quoting the first line it does not recognise."""
    lines = [line for line in text.splitlines() if line.strip()]
    _require_banner(lines)
    at = _header_index(lines)
    layout = _layout(lines[at], lines[at + 1])
    rows = _device_rows(lines[at + 2 :])
    if len(rows) % 2:
        raise unexpected("a chip's second row is missing", rows[-1])
    return [_reading(rows[i], rows[i + 1], layout) for i in range(0, len(rows), 2)]


def _require_banner(lines: list[str]) -> None:
    for line in lines[:3]:
        if re.match(r"^\|\s*npu-smi\s+\S+\s+Version:\s*\S+\s*\|$", line.strip()):
            return
    first = lines[0] if lines else ""
    raise unexpected("not `npu-smi info` output (no npu-smi version banner)", first)


def _header_index(lines: list[str]) -> int:
    for at, line in enumerate(lines[:-1]):
        if line.strip().startswith("|") and "Health" in line:
            return at
    raise unexpected("no `NPU Name | Health` header row", lines[-1] if lines else "")


def _layout(first: str, second: str) -> _Layout:
    npu, health, first_values = cells(first, 3)
    chip, bus, second_values = cells(second, 3)
    if npu.split() != ["NPU", "Name"] or health != "Health":
        raise unexpected("expected the `NPU Name | Health` header", first)
    if chip.split() not in (["Chip"], ["Chip", "Device"]) or bus != "Bus-Id":
        raise unexpected("expected the `Chip [Device] | Bus-Id` header", second)
    return _Layout(
        first_fields=_field_names(first_values, first),
        second_fields=_field_names(second_values, second),
        has_device=chip.split() == ["Chip", "Device"],
    )


def _field_names(cell: str, line: str) -> tuple[str, ...]:
    names = tuple(_FIELD_NAME.findall(cell))
    if not names or "".join(names) != "".join(cell.split()):
        raise unexpected("could not read the column names", line)
    for name in names:
        if name not in KNOWN_FIELDS:
            raise unexpected(f"unknown column {name!r}", line)
    return names


def _device_rows(lines: list[str]) -> list[str]:
    rows: list[str] = []
    for at, line in enumerate(lines):
        if is_rule(line):
            continue
        if "Process id" in line:
            _require_table(lines[at:])
            break
        rows.append(line)
    return rows


def _require_table(lines: list[str]) -> None:
    """The process table is not read, but it must still be a table."""
    for line in lines:
        text = line.strip()
        if not is_rule(line) and not (text.startswith("|") and text.endswith("|")):
            raise unexpected("expected the process table", line)


_Value = str | tuple[str, str]
"""One value of the third cell: a scalar as printed, or the two sides of `used / total`."""


def _values(cell: str, fields: tuple[str, ...], line: str) -> dict[str, _Value]:
    items: list[_Value] = []
    for match in _VALUE.finditer(cell):
        if match.group(3) is not None:
            items.append(match.group(3))
        else:
            items.append((match.group(1), match.group(2)))
    if len(items) != len(fields):
        raise unexpected(f"expected {len(fields)} values for {', '.join(fields)}", line)
    values: dict[str, _Value] = {}
    for field, item in zip(fields, items, strict=True):
        if ("Usage" in field) != isinstance(item, tuple):
            raise unexpected(f"unexpected value for {field}", line)
        values[field] = item
    return values


def _used_total(item: _Value, line: str) -> tuple[float | None, float | None]:
    if isinstance(item, str):
        raise unexpected(f"expected 'used / total', got {item!r}", line)
    return quantity(item[0], "", line), quantity(item[1], "", line)


def _reading(first: str, second: str, layout: _Layout) -> DeviceReading:
    npu_cell, health, first_values = cells(first, 3)
    chip_cell, _bus, second_values = cells(second, 3)
    npu_words, chip_words = npu_cell.split(), chip_cell.split()
    if len(npu_words) != 2:
        raise unexpected("expected `NPU-id Name`", first)
    if len(chip_words) != (2 if layout.has_device else 1):
        raise unexpected("expected `Chip [Device]`", second)
    if health not in HEALTH_WORDS:
        raise unexpected(f"unknown health word {health!r}", first)
    index = _index(npu_words[0], chip_words, first, second)
    values = _values(first_values, layout.first_fields, first)
    values |= _values(second_values, layout.second_fields, second)
    memory_used, memory_total = _memory(values, second)
    signals = [Signal("health", health, f"Health {health}")]
    signals += _scalar_signals(values, first, second)
    if memory_used is not None:
        signals.append(Signal("memory_used_mib", memory_used, f"memory used {memory_used:g} MB"))
    return DeviceReading(
        index=index,
        model=npu_words[1],
        memory_mib=None if memory_total is None else int(memory_total),
        signals=tuple(signals),
    )


def _index(npu: str, chip_words: list[str], first: str, second: str) -> int:
    npu_id = whole(npu, "NPU id", first)
    if len(chip_words) == 2:
        return whole(chip_words[1], "Device", second)
    if whole(chip_words[0], "Chip", second) != 0:
        raise unexpected("a chip other than 0 with no Device column", second)
    return npu_id


def _scalar_signals(values: dict[str, _Value], first: str, second: str) -> list[Signal]:
    wanted = (
        ("Temp(C)", "temperature_c", first),
        ("Power(W)", "power_w", first),
        ("AICore(%)", "utilization_pct", second),
    )
    signals: list[Signal] = []
    for field, name, line in wanted:
        if field not in values:
            continue
        value = quantity(str(values[field]), "", line)
        if value is not None:
            signals.append(Signal(name, value, f"{field} {values[field]}"))
    return signals


def _memory(values: dict[str, _Value], line: str) -> tuple[float | None, float | None]:
    if "HBM-Usage(MB)" in values:
        used, total = _used_total(values["HBM-Usage(MB)"], line)
        if total:
            return used, total
    if "Memory-Usage(MB)" in values:
        return _used_total(values["Memory-Usage(MB)"], line)
    return None, None
