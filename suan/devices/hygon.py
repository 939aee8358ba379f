"""Hygon DCUs: health read from `hy-smi` (the default summary of DTK 24.04).

`hy-smi` prints a banner, one whitespace-separated row per DCU, and an end banner:

    ============================ System Management Interface =============================
    ======================================================================================
    DCU     Temp     AvgPwr     Perf     PwrCap     VRAM%      DCU%      Mode
    0       49.0C    118.0W     auto     800.0W     0%         0%        Normal
    ======================================================================================
    =================================== End of SMI Log ===================================

The summary has no ECC or health column, and gives memory only as a percentage. The Mode
column (the DCU's partition mode) is read but emits no signal. Newer releases print an HCU
table with decoder and encoder columns; no public sample of it with a stated source was
found, so its header is unexpected output here. `rocm-smi` run on a DCU prints a different
table under the same banner (with a Fan column), and is rejected as well.
"""

from __future__ import annotations

from suan.devices.model import DeviceReading
from suan.devices.textcells import present, quantity, unexpected, whole

TOOL: tuple[str, ...] = ("hy-smi",)

SIGNALS: dict[str, str] = {
    "temperature_c": "Temp",
    "power_w": "AvgPwr",
    "utilization_pct": "DCU%",
    "memory_used_pct": "VRAM% (the summary prints no MiB)",
}
"""The signals this parser emits, each with the `hy-smi` column it is read from."""

COLUMNS = ("DCU", "Temp", "AvgPwr", "Perf", "PwrCap", "VRAM%", "DCU%", "Mode")
"""The header row of the summary table, word for word."""

BANNER = "System Management Interface"
END = "End of SMI Log"


def parse(text: str) -> list[DeviceReading]:
    """The DCUs `hy-smi` printed in `text`, in the tool's order. Raises `UnexpectedOutput`
    quoting the first line it does not recognise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or BANNER not in lines[0] or not lines[0].startswith("="):
        raise unexpected("not `hy-smi` output (no SMI banner)", _first(lines))
    if END not in lines[-1]:
        raise unexpected("`hy-smi` output ends without its End of SMI Log banner", lines[-1])
    body = [line for line in lines[1:-1] if set(line) != {"="}]
    if not body or tuple(body[0].split()) != COLUMNS:
        raise unexpected(f"expected the header {' '.join(COLUMNS)}", _first(body))
    return [_reading(line) for line in body[1:]]


def _first(lines: list[str]) -> str:
    return lines[0] if lines else ""


def _reading(line: str) -> DeviceReading:
    values = line.split()
    if len(values) != len(COLUMNS):
        raise unexpected(f"expected {len(COLUMNS)} columns", line)
    row = dict(zip(COLUMNS, values, strict=True))
    quantity(row["PwrCap"], "W", line)
    measured = [
        ("temperature_c", quantity(row["Temp"], "C", line), f"Temp {row['Temp']}"),
        ("power_w", quantity(row["AvgPwr"], "W", line), f"AvgPwr {row['AvgPwr']}"),
        ("utilization_pct", quantity(row["DCU%"], "%", line), f"DCU% {row['DCU%']}"),
        ("memory_used_pct", quantity(row["VRAM%"], "%", line), f"VRAM% {row['VRAM%']}"),
    ]
    return DeviceReading(
        index=whole(row["DCU"], "DCU", line),
        model="DCU",  # the summary prints no model name, only its DCU column
        signals=present(measured),
    )
