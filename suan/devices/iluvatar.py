"""Iluvatar CoreX GPUs: health read from `ixsmi` (the summary table of IX-ML 4.x).

`ixsmi` prints one block of two rows per GPU:

    | GPU  Name                     | Bus-Id               | Clock-SM  Clock-Mem  |
    | Fan  Temp  Perf  Pwr:Usage/Cap|      Memory-Usage    | GPU-Util  Compute M. |
    | 0    Iluvatar BI-V150         | 00000000:13:00.0     | 1500MHz   1600MHz    |
    | 0%   32C   P0    N/A / N/A    | 116MiB / 32768MiB    | 0%        Default    |

then a process table, which is not read. This summary has no ECC or health column. Power
reads N/A on every other GPU of the public BI-V150 sample; for those no power signal is
emitted.
"""

from __future__ import annotations

import re

from suan.devices.model import DeviceReading
from suan.devices.textcells import (
    cells,
    header_at,
    pair,
    present,
    quantity,
    rows_until,
    unexpected,
    whole,
)

TOOL: tuple[str, ...] = ("ixsmi",)

SIGNALS: dict[str, str] = {
    "temperature_c": "Temp",
    "power_w": "Pwr:Usage (the part before the slash; absent when N/A)",
    "utilization_pct": "GPU-Util",
    "memory_used_mib": "Memory-Usage (the part before the slash)",
}
"""The signals this parser emits, each with the `ixsmi` column it is read from."""

HEADER = [
    [["GPU", "Name"], ["Bus-Id"], ["Clock-SM", "Clock-Mem"]],
    [["Fan", "Temp", "Perf", "Pwr:Usage/Cap"], ["Memory-Usage"], ["GPU-Util", "Compute", "M."]],
]
"""The two header rows of the IX-ML summary table, word for word."""

_BANNER = re.compile(r"^\|\s*IX-ML:\s*\S+\s+Driver Version:.*\|$")


def parse(text: str) -> list[DeviceReading]:
    """The GPUs `ixsmi` printed in `text`, in the tool's order. Raises `UnexpectedOutput`
    quoting the first line it does not recognise."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not any(_BANNER.match(line.strip()) for line in lines[:3]):
        raise unexpected("not `ixsmi` output (no IX-ML banner)", lines[0] if lines else "")
    at = header_at(lines, HEADER, "ixsmi")
    rows = rows_until(lines[at + len(HEADER) :], "Processes:")
    if len(rows) % 2:
        raise unexpected("a GPU's second row is missing", rows[-1])
    return [_reading(rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]


def _reading(first: str, second: str) -> DeviceReading:
    identity, _bus, _clocks = cells(first, 3)
    index_and_name = identity.split(maxsplit=1)
    if len(index_and_name) != 2:
        raise unexpected("expected `GPU Name`", first)
    fan_temp_perf_power, memory, util_mode = cells(second, 3)
    parts = fan_temp_perf_power.split(maxsplit=3)
    util = util_mode.split()
    if len(parts) != 4 or len(util) != 2:
        raise unexpected("expected `Fan Temp Perf Pwr:Usage/Cap | Memory | GPU-Util Mode`", second)
    power, _cap = pair(parts[3], "W", second)
    used, total = pair(memory, "MiB", second)
    measured = [
        ("temperature_c", quantity(parts[1], "C", second), f"Temp {parts[1]}"),
        ("power_w", power, f"Pwr:Usage/Cap {parts[3]}"),
        ("utilization_pct", quantity(util[0], "%", second), f"GPU-Util {util[0]}"),
        ("memory_used_mib", used, f"Memory-Usage {memory}"),
    ]
    return DeviceReading(
        index=whole(index_and_name[0], "GPU", first),
        model=index_and_name[1],
        memory_mib=None if total is None else int(total),
        signals=present(measured),
    )
