"""AMD through `amd-smi metric --json`: usage, power, clocks, temperatures and RAS/ECC counts.

amd-smi prints a JSON list with one object per GPU (`"gpu": N`); newer releases wrap that list
as `{"gpu_data": [...]}`. Both are read. A value the GPU does not report is the string "N/A" and
gives no signal. Anything else raises `UnexpectedOutput`.

SIGNALS maps each signal name to the JSON field it comes from.
"""

from __future__ import annotations

import json
from typing import Any

from suan.devices.model import DeviceReading, Signal, UnexpectedOutput
from suan.devices.runner import quote

TOOL: tuple[str, ...] = ("amd-smi", "metric", "--json")

SIGNALS: dict[str, str] = {
    "ecc_uncorrectable": "ecc.total_uncorrectable_count (RAS, all blocks)",
    "ecc_correctable": "ecc.total_correctable_count",
    "ecc_deferred": "ecc.total_deferred_count (uncorrectable errors the GPU deferred: poison)",
    "ecc_block_uncorrectable": "ecc_blocks.<BLOCK>.uncorrectable_count (per block, when above 0)",
    "throttled": "power.throttle_status (THROTTLED / UNTHROTTLED)",
    "temperature_c": "temperature.hotspot (junction), else temperature.edge",
    "memory_temperature_c": "temperature.mem",
}


def parse(text: str) -> list[DeviceReading]:
    """Every GPU of one `amd-smi metric --json` output; see the module docstring."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnexpectedOutput(f"not JSON ({exc.msg}): {quote(text, 80)!r}") from None
    if isinstance(document, dict) and isinstance(document.get("gpu_data"), list):
        document = document["gpu_data"]
    if not isinstance(document, list):
        raise UnexpectedOutput("neither a list of GPUs nor {'gpu_data': [...]}")
    return [_reading(position, entry) for position, entry in enumerate(document)]


def _reading(position: int, entry: Any) -> DeviceReading:
    if not isinstance(entry, dict) or not isinstance(entry.get("gpu"), int):
        raise UnexpectedOutput(f"GPU entry {position} has no integer 'gpu' index")
    signals = [*_ecc_signals(entry), *_power_signals(entry), *_temperature_signals(entry)]
    total = _value(_path(entry, "mem_usage", "total_vram"))
    return DeviceReading(
        index=entry["gpu"],
        model="",
        memory_mib=int(total) if total is not None else None,
        signals=tuple(signals),
    )


def _path(entry: dict[str, Any], *keys: str) -> Any:
    """The value under `keys`, None when any level is missing or not a mapping."""
    value: Any = entry
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _value(field: Any) -> float | None:
    """A number from a plain number or a {"value": ..., "unit": ...} pair; None for N/A."""
    if isinstance(field, dict):
        field = field.get("value")
    if isinstance(field, bool) or not isinstance(field, int | float):
        return None
    return field


def _ecc_signals(entry: dict[str, Any]) -> list[Signal]:
    counts = (
        ("ecc_uncorrectable", "total_uncorrectable_count", "uncorrectable ECC errors"),
        ("ecc_correctable", "total_correctable_count", "correctable ECC errors"),
        ("ecc_deferred", "total_deferred_count", "deferred ECC errors"),
    )
    signals = []
    for name, key, words in counts:
        count = _value(_path(entry, "ecc", key))
        if count is not None:
            signals.append(Signal(name, int(count), f"{words}: {int(count)}"))
    blocks = entry.get("ecc_blocks")
    for block, values in blocks.items() if isinstance(blocks, dict) else ():
        count = _value(values.get("uncorrectable_count")) if isinstance(values, dict) else None
        if count:
            detail = f"uncorrectable ECC errors in block {block}: {int(count)}"
            signals.append(Signal("ecc_block_uncorrectable", int(count), detail))
    return signals


def _power_signals(entry: dict[str, Any]) -> list[Signal]:
    status = _path(entry, "power", "throttle_status")
    if not isinstance(status, str) or status == "N/A":
        return []
    return [Signal("throttled", status, f"throttle status: {status}")]


def _temperature_signals(entry: dict[str, Any]) -> list[Signal]:
    signals = []
    hotspot = _value(_path(entry, "temperature", "hotspot"))
    edge = _value(_path(entry, "temperature", "edge"))
    chip, where = (hotspot, "hotspot") if hotspot is not None else (edge, "edge")
    if chip is not None:
        signals.append(Signal("temperature_c", chip, f"{where} temperature {chip:g} C"))
    memory = _value(_path(entry, "temperature", "mem"))
    if memory is not None:
        signals.append(Signal("memory_temperature_c", memory, f"memory temperature {memory:g} C"))
    return signals
