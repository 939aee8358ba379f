"""Cambricon MLUs: health read from `cnmon` (the summary table of CNMON v5).

`cnmon` prints one block of two rows per card:

    | Card  VF  Name       Firmware |               Bus-Id | Util        Ecc-Error |
    | Fan   Temp      Pwr:Usage/Cap |         Memory-Usage | SR-IOV   Compute-Mode |
    | 0     /   MLU370-X8    v1.1.6 |         0000:39:00.0 | 0%                N/A |
    |  0%   32C        106 W/ 250 W |     0 MiB/ 23374 MiB | N/A           Default |

then a process table, which is not read. The third header of the second row reads `SR-IOV` or
`Mode` depending on the release; both are accepted. A card shown as a virtual function (a VF
other than `/`) is an error: no public sample shows how its rows read.
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
    words,
)

TOOL: tuple[str, ...] = ("cnmon",)

SIGNALS: dict[str, str] = {
    "temperature_c": "Temp",
    "power_w": "Pwr:Usage (the part before the slash)",
    "utilization_pct": "Util",
    "memory_used_mib": "Memory-Usage (the part before the slash)",
    "ecc_errors": "Ecc-Error (a count; the summary does not say whether corrected or not)",
}
"""The signals this parser emits, each with the `cnmon` column it is read from."""

HEADER = [
    [["Card", "VF", "Name", "Firmware"], ["Bus-Id"], ["Util", "Ecc-Error"]],
    [
        ["Fan", "Temp", "Pwr:Usage/Cap"],
        ["Memory-Usage"],
        [["SR-IOV", "Compute-Mode"], ["Mode", "Compute-Mode"]],
    ],
]
"""The two header rows of the CNMON v5 summary table, word for word."""

_BANNER = re.compile(r"^\|\s*CNMON\s+v?[\d.]+\s.*\|$")


def parse(text: str) -> list[DeviceReading]:
    """The cards `cnmon` printed in `text`, in the tool's order. Raises `UnexpectedOutput`
    quoting the first line it does not recognise."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not any(_BANNER.match(line.strip()) for line in lines[:3]):
        raise unexpected("not `cnmon` output (no CNMON banner)", lines[0] if lines else "")
    at = header_at(lines, HEADER, "cnmon")
    rows = rows_until(lines[at + len(HEADER) :], "Processes:")
    if len(rows) % 2:
        raise unexpected("a card's second row is missing", rows[-1])
    return [_reading(rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]


def _reading(first: str, second: str) -> DeviceReading:
    identity, _bus, usage = words(first, 3)
    if len(identity) != 4 or len(usage) != 2:
        raise unexpected("expected `Card VF Name Firmware | Bus-Id | Util Ecc-Error`", first)
    card, vf, name, _firmware = identity
    if vf != "/":
        raise unexpected("virtual function rows are not read", first)
    fan_temp_power, memory, _modes = cells(second, 3)
    parts = fan_temp_power.split(maxsplit=2)
    if len(parts) != 3:
        raise unexpected("expected `Fan Temp Pwr:Usage/Cap`", second)
    power, _cap = pair(parts[2], "W", second)
    used, total = pair(memory, "MiB", second)
    measured = [
        ("temperature_c", quantity(parts[1], "C", second), f"Temp {parts[1]}"),
        ("power_w", power, f"Pwr:Usage/Cap {parts[2]}"),
        ("utilization_pct", quantity(usage[0], "%", first), f"Util {usage[0]}"),
        ("memory_used_mib", used, f"Memory-Usage {memory}"),
        ("ecc_errors", quantity(usage[1], "", first), f"Ecc-Error {usage[1]}"),
    ]
    return DeviceReading(
        index=whole(card, "Card", first),
        model=name,
        memory_mib=None if total is None else int(total),
        signals=present(measured),
    )
