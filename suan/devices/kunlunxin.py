"""Kunlunxin XPUs: health read from `xpu-smi`, in either of the two layouts it has printed.

Drivers 5.x print a table of three rows per device, after nvidia-smi's:

    | XPU  Name        Persistence-M| Bus-Id        Disp.A | Volatile Uncorr. ECC |
    | Fan  Temp  Perf  Pwr:Usage/Cap|         Memory-Usage | XPU-Util  Compute M. |
    |                               |             L3-Usage |            SR-IOV M. |
    |   0  P800 OAM           N/A   | 00000000:03:00.0 N/A |                    0 |
    | N/A   37C  N/A     88W / 400W |      0MiB / 98304MiB |      0%      Default |
    |                               |      0MiB /    96MiB |             Disabled |

Drivers 4.x (R200/R300 boards) print a DEVICES table of one row per device, then VIDEO and
PROCESSES tables, which are not read:

    | DevID |   PCI Addr   | Model |   SN   |    INODE   | UseRate |    L3     |    Memory    |
    |     0 | 0000:53:00.0 | R300  | 02Kxxx | /dev/xpu0  |     0 % | 0 / 63 MB | 0 / 32768 MB |

The 4.x table has no temperature, power or ECC column.
"""

from __future__ import annotations

import re

from suan.devices.model import DeviceReading
from suan.devices.textcells import (
    cells,
    header_at,
    is_rule,
    pair,
    present,
    quantity,
    rows_until,
    unexpected,
    whole,
)

TOOL: tuple[str, ...] = ("xpu-smi",)

SIGNALS: dict[str, str] = {
    "ecc_uncorrectable": "Volatile Uncorr. ECC (5.x; absent when N/A)",
    "temperature_c": "Temp (5.x)",
    "power_w": "Pwr:Usage (5.x, the part before the slash)",
    "utilization_pct": "XPU-Util (5.x) or UseRate (4.x)",
    "memory_used_mib": "Memory-Usage (5.x) or Memory (4.x), the part before the slash",
}
"""The signals this parser emits, each with the `xpu-smi` column it is read from. The 4.x
table prints memory in MB; its totals (32768 for a 32 GiB R300) show they are mebibytes."""

HEADER_5 = [
    [["XPU", "Name", "Persistence-M"], ["Bus-Id", "Disp.A"], ["Volatile", "Uncorr.", "ECC"]],
    [["Fan", "Temp", "Perf", "Pwr:Usage/Cap"], ["Memory-Usage"], ["XPU-Util", "Compute", "M."]],
    [[], ["L3-Usage"], ["SR-IOV", "M."]],
]
"""The three header rows of the driver 5.x table, word for word."""

HEADER_4 = [
    [
        ["DevID"],
        ["PCI", "Addr"],
        ["Model"],
        ["SN"],
        ["INODE"],
        ["UseRate"],
        ["L3"],
        ["Memory"],
    ]
]
"""The header row of the driver 4.x DEVICES table, word for word."""

SECTIONS_4 = frozenset({"DEVICES", "VIDEO", "PROCESSES"})
"""The section titles of the driver 4.x output."""

_BANNER_5 = re.compile(r"^\|\s*XPU-SMI\s+Driver Version:.*\|$")
_VERSION_4 = re.compile(r"^(Runtime|Driver) Version:\s*\S+$")


def parse(text: str) -> list[DeviceReading]:
    """The devices `xpu-smi` printed in `text`, in the tool's order. Raises
    `UnexpectedOutput` quoting the first line it does not recognise."""
    lines = [line for line in text.splitlines() if line.strip()]
    if any(_BANNER_5.match(line.strip()) for line in lines[:3]):
        return _parse_5(lines)
    if lines and _VERSION_4.match(lines[0].strip()):
        return _parse_4(lines)
    raise unexpected("not `xpu-smi` output (no XPU-SMI banner)", lines[0] if lines else "")


def _parse_5(lines: list[str]) -> list[DeviceReading]:
    at = header_at(lines, HEADER_5, "xpu-smi")
    rows = rows_until(lines[at + len(HEADER_5) :], "Processes:")
    if len(rows) % 3:
        raise unexpected("a device's rows are incomplete", rows[-1])
    return [_reading_5(*rows[i : i + 3]) for i in range(0, len(rows), 3)]


def _reading_5(first: str, second: str, third: str) -> DeviceReading:
    identity, _bus, ecc = cells(first, 3)
    words = identity.split()
    if len(words) < 3:
        raise unexpected("expected `XPU Name Persistence-M`", first)
    fan_temp_perf_power, memory, util_mode = cells(second, 3)
    parts = fan_temp_perf_power.split(maxsplit=3)
    util = util_mode.split()
    if len(parts) != 4 or len(util) != 2:
        raise unexpected("expected `Fan Temp Perf Pwr:Usage/Cap | Memory | XPU-Util Mode`", second)
    blank, l3, _sriov = cells(third, 3)
    if blank:
        raise unexpected("expected an empty first cell in the L3-Usage row", third)
    pair(l3, "MiB", third)
    power, _cap = pair(parts[3], "W", second)
    used, total = pair(memory, "MiB", second)
    measured = [
        ("ecc_uncorrectable", quantity(ecc, "", first), f"Volatile Uncorr. ECC {ecc}"),
        ("temperature_c", quantity(parts[1], "C", second), f"Temp {parts[1]}"),
        ("power_w", power, f"Pwr:Usage/Cap {parts[3]}"),
        ("utilization_pct", quantity(util[0], "%", second), f"XPU-Util {util[0]}"),
        ("memory_used_mib", used, f"Memory-Usage {memory}"),
    ]
    return DeviceReading(
        index=whole(words[0], "XPU", first),
        model=" ".join(words[1:-1]),
        memory_mib=None if total is None else int(total),
        signals=present(measured),
    )


def _parse_4(lines: list[str]) -> list[DeviceReading]:
    at = header_at(lines, HEADER_4, "xpu-smi")
    readings: list[DeviceReading] = []
    body = lines[at + 1 :]
    for position, line in enumerate(body):
        if is_rule(line):
            continue
        if line.strip() in SECTIONS_4:
            _require_sections(body[position:])
            break
        readings.append(_reading_4(line))
    return readings


def _require_sections(lines: list[str]) -> None:
    """The VIDEO and PROCESSES tables are not read, but they must still be tables."""
    for line in lines:
        text = line.strip()
        table_row = text.startswith("|") and text.endswith("|")
        if not (is_rule(line) or table_row or text in SECTIONS_4):
            raise unexpected("expected the VIDEO or PROCESSES table", line)


def _reading_4(line: str) -> DeviceReading:
    dev_id, _pci, model, _sn, _inode, use_rate, l3, memory = cells(line, 8)
    pair(l3, "MB", line)
    used, total = pair(memory, "MB", line)
    measured = [
        ("utilization_pct", quantity(use_rate, "%", line), f"UseRate {use_rate}"),
        ("memory_used_mib", used, f"Memory {memory}"),
    ]
    return DeviceReading(
        index=whole(dev_id, "DevID", line),
        model=model,
        memory_mib=None if total is None else int(total),
        signals=present(measured),
    )
