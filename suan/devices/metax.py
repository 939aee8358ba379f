"""MetaX GPUs: health read from `mx-smi` (the summary table of mx-smi 2.1 and 2.2).

`mx-smi` prints one block of two rows per GPU. Release 2.1 prints only the power draw and
leaves the last cell of the second row empty; release 2.2 prints `usage / cap` and a
GPU-State word there:

    | GPU         NAME                   | Bus-id              | GPU-Util             |
    | Temp        Pwr:Usage/Cap          | Memory-Usage        | GPU-State            |
    | 0           MetaX C550             | 0000:0f:00.0        | 0%                   |
    | 29C         53W / 450W             | 858/65536 MiB       | Available            |

then a process table, which is not read. The GPU-State word is passed on as the `health`
signal unchanged: the public samples show only `Available`, and MetaX publishes no list of
the others, so the severity table maps `Available` and treats any other word by its rule for
unknown values.
"""

from __future__ import annotations

import re

from suan.devices.model import DeviceReading, Signal, UnexpectedOutput
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

TOOL: tuple[str, ...] = ("mx-smi",)

SIGNALS: dict[str, str] = {
    "health": "GPU-State (release 2.2; the word as printed, `Available` in every public sample)",
    "temperature_c": "Temp",
    "power_w": "Power (2.1) or Pwr:Usage (2.2, the part before the slash)",
    "utilization_pct": "GPU-Util",
    "memory_used_mib": "Memory-Usage (the part before the slash)",
}
"""The signals this parser emits, each with the `mx-smi` column it is read from."""

_FIRST = [["GPU", "NAME"], ["Bus-id"], ["GPU-Util"]]
HEADERS = {
    "2.1": [_FIRST, [["Temp", "Power"], ["Memory-Usage"], []]],
    "2.2": [_FIRST, [["Temp", "Pwr:Usage/Cap"], ["Memory-Usage"], ["GPU-State"]]],
}
"""The two header rows of each release's summary table, word for word."""

_BANNER = re.compile(r"^mx-smi\s+version:\s*\S+$")


def parse(text: str) -> list[DeviceReading]:
    """The GPUs `mx-smi` printed in `text`, in the tool's order. Raises `UnexpectedOutput`
    quoting the first line it does not recognise."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not _BANNER.match(lines[0].strip()):
        raise unexpected("not `mx-smi` output (no mx-smi version line)", lines[0] if lines else "")
    release, at = _find_header(lines)
    rows = rows_until(lines[at + 2 :], "Process:")
    if len(rows) % 2:
        raise unexpected("a GPU's second row is missing", rows[-1])
    return [_reading(rows[i], rows[i + 1], release) for i in range(0, len(rows), 2)]


def _find_header(lines: list[str]) -> tuple[str, int]:
    for release, header in HEADERS.items():
        try:
            return release, header_at(lines, header, "mx-smi")
        except UnexpectedOutput:
            continue
    raise unexpected("no mx-smi 2.1 or 2.2 table header", lines[0])


def _reading(first: str, second: str, release: str) -> DeviceReading:
    identity, _bus, util = cells(first, 3)
    index_and_name = identity.split(maxsplit=1)
    if len(index_and_name) != 2:
        raise unexpected("expected `GPU NAME`", first)
    temp_power, memory, state = cells(second, 3)
    parts = temp_power.split(maxsplit=1)
    if len(parts) != 2:
        raise unexpected("expected `Temp Power`", second)
    power = quantity(parts[1], "W", second) if release == "2.1" else pair(parts[1], "W", second)[0]
    used, total = pair(memory, "MiB", second)
    signals = list(
        present(
            [
                ("temperature_c", quantity(parts[0], "C", second), f"Temp {parts[0]}"),
                ("power_w", power, f"Power {parts[1]}"),
                ("utilization_pct", quantity(util, "%", first), f"GPU-Util {util}"),
                ("memory_used_mib", used, f"Memory-Usage {memory}"),
            ]
        )
    )
    if release == "2.1" and state:
        raise unexpected("expected an empty last cell in mx-smi 2.1", second)
    if release == "2.2":
        if len(state.split()) != 1:
            raise unexpected("expected one GPU-State word", second)
        signals.insert(0, Signal("health", state, f"GPU-State {state}"))
    return DeviceReading(
        index=whole(index_and_name[0], "GPU", first),
        model=index_and_name[1],
        memory_mib=None if total is None else int(total),
        signals=tuple(signals),
    )
