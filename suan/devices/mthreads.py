"""Moore Threads GPUs: health read from `mthreads-gmi` (the summary of releases 1.x and 2.x).

`mthreads-gmi` prints a table without outer bars, three lines per GPU:

    ID   Name           |PCIe                |%GPU  Mem
         Device Type    |Pcie Lane Width     |Temp  MPC Capable
                                             |      ECC Mode
    0    MTT S4000      |00000000:08:00.0    |88%   44302MiB(32768MiB)
         Physical       |16x(16x)            |65C   YES
                                             |      N/A

Release 2.x adds a Perf column after Device Type (`Physical      P0`). Memory reads
`used(total)`, link width `current(maximum)`. A link running on fewer lanes than it has is
reported as `pcie_lanes_missing`. ECC Mode is a setting (`On-die, EDC`), not a count, and
emits no signal. A 2.x table without the ECC Mode line has been seen, but not whole with a
stated source, so it is unexpected output here.
"""

from __future__ import annotations

import re

from suan.devices.model import DeviceReading
from suan.devices.textcells import is_rule, present, quantity, unexpected, whole

TOOL: tuple[str, ...] = ("mthreads-gmi",)

SIGNALS: dict[str, str] = {
    "temperature_c": "Temp",
    "utilization_pct": "%GPU",
    "memory_used_mib": "Mem (the number before the parenthesis)",
    "pcie_lanes_missing": "Pcie Lane Width: maximum lanes (in parentheses) less current lanes",
}
"""The signals this parser emits, each with the `mthreads-gmi` column it is read from."""

HEADERS = {
    release: [
        [["ID", "Name"], ["PCIe"], ["%GPU", "Mem"]],
        [device_type, ["Pcie", "Lane", "Width"], ["Temp", "MPC", "Capable"]],
        [[], ["ECC", "Mode"]],
    ]
    for release, device_type in (("1.x", ["Device", "Type"]), ("2.x", ["Device", "Type", "Perf"]))
}
"""Each release's three header lines, split at their bars, word for word (the third line has
only the bar before the last column)."""

HEADER_LINES = 3

_BANNER = re.compile(r"^mthreads-gmi:\s*\S+\s+Driver Version:\s*\S+$")
_USED_TOTAL = re.compile(r"^(\d+)MiB\((\d+)MiB\)$")
_WIDTH = re.compile(r"^(\d+)x\((\d+)x\)$")


def parse(text: str) -> list[DeviceReading]:
    """The GPUs `mthreads-gmi` printed in `text`, in the tool's order. Raises
    `UnexpectedOutput` quoting the first line it does not recognise."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not any(_BANNER.match(line.strip()) for line in lines[:3]):
        raise unexpected("not `mthreads-gmi` output (no version banner)", lines[0] if lines else "")
    at = _header_at(lines)
    rows = _rows(lines[at + HEADER_LINES :])
    if len(rows) % 3:
        raise unexpected("a GPU's lines are incomplete", rows[-1])
    return [_reading(*rows[i : i + 3]) for i in range(0, len(rows), 3)]


def _parts(line: str, count: int = 3) -> list[str]:
    parts = [part.strip() for part in line.split("|")]
    if len(parts) != count:
        raise unexpected(f"expected {count} parts separated by |", line)
    return parts


def _header_at(lines: list[str]) -> int:
    for at in range(len(lines) - HEADER_LINES + 1):
        candidate = lines[at : at + HEADER_LINES]
        split = [[part.split() for part in line.split("|")] for line in candidate]
        if split in HEADERS.values():
            return at
    raise unexpected("no mthreads-gmi 1.x or 2.x table header", lines[0])


def _rows(lines: list[str]) -> list[str]:
    rows: list[str] = []
    for line in lines:
        if line.strip() == "Processes:":
            break
        if not is_rule(line):
            rows.append(line)
    return rows


def _reading(first: str, second: str, third: str) -> DeviceReading:
    identity, _bus, util_mem = _parts(first)
    _device_type, width, temp_mpc = _parts(second)
    blank, _ecc_mode = _parts(third, 2)
    index_and_name = identity.split(maxsplit=1)
    util_and_mem = util_mem.split()
    temp = temp_mpc.split()
    if len(index_and_name) != 2 or len(util_and_mem) != 2:
        raise unexpected("expected `ID Name | PCIe | %GPU Mem`", first)
    if len(temp) != 2:
        raise unexpected("expected `Device Type | Width | Temp MPC`", second)
    if blank:
        raise unexpected("expected `| ECC Mode` alone on a GPU's third line", third)
    memory = _USED_TOTAL.match(util_and_mem[1])
    lanes = _WIDTH.match(width)
    if memory is None:
        raise unexpected("expected memory as `usedMiB(totalMiB)`", first)
    if lanes is None:
        raise unexpected("expected link width as `Nx(Mx)`", second)
    measured = [
        ("temperature_c", quantity(temp[0], "C", second), f"Temp {temp[0]}"),
        ("utilization_pct", quantity(util_and_mem[0], "%", first), f"%GPU {util_and_mem[0]}"),
        ("memory_used_mib", float(memory.group(1)), f"Mem {util_and_mem[1]}"),
        (
            "pcie_lanes_missing",
            float(int(lanes.group(2)) - int(lanes.group(1))),
            f"Pcie Lane Width {width}",
        ),
    ]
    return DeviceReading(
        index=whole(index_and_name[0], "ID", first),
        model=index_and_name[1],
        memory_mib=int(memory.group(2)),
        signals=present(measured),
    )
