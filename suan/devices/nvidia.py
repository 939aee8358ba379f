"""NVIDIA through `nvidia-smi -q -x`: the driver's own XML report of every GPU.

`parse(text)` reads one report into a `DeviceReading` per `<gpu>` element, in the order
nvidia-smi lists them (PCI bus order, the index `CUDA_VISIBLE_DEVICES` takes under
`CUDA_DEVICE_ORDER=PCI_BUS_ID`). A field the GPU does not support reads `N/A` in the XML and
gives no signal. Output that is not an nvidia-smi report raises `UnexpectedOutput`.

SIGNALS maps each signal name to the XML field it comes from.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from suan.devices.model import DeviceReading, Signal, UnexpectedOutput
from suan.devices.runner import quote

TOOL: tuple[str, ...] = ("nvidia-smi", "-q", "-x")

SIGNALS: dict[str, str] = {
    "ecc_uncorrectable": "ecc_errors/volatile dram_uncorrectable + sram_uncorrectable "
    "(older schema: volatile/double_bit/total): uncorrectable errors since the driver loaded",
    "ecc_uncorrectable_aggregate": "ecc_errors/aggregate, the same over the GPU's lifetime",
    "ecc_correctable": "ecc_errors/volatile dram_correctable + sram_correctable",
    "retired_pages_pending": "retired_pages/pending_retirement (Yes/No)",
    "retired_pages": "retired_pages single- plus double-bit retired_count",
    "remapped_rows_pending": "remapped_rows/remapped_row_pending (Yes/No)",
    "remapped_rows_failure": "remapped_rows/remapped_row_failure (Yes/No)",
    "remapped_rows_uncorrectable": "remapped_rows/remapped_row_unc",
    "hw_slowdown": "clocks_event_reasons (or clocks_throttle_reasons) hw_slowdown",
    "thermal_throttle": "the same, hw_thermal_slowdown or sw_thermal_slowdown",
    "power_brake": "the same, hw_power_brake_slowdown",
    "temperature_c": "temperature/gpu_temp",
    "temperature_margin_c": "temperature/gpu_temp_slow_threshold minus gpu_temp",
    "reset_required": "gpu_reset_status/reset_required (Yes/No)",
    "drain_and_reset_recommended": "gpu_reset_status/drain_and_reset_recommended (Yes/No)",
    "recovery_action": "gpu_recovery_action (None, or what the driver asks for)",
}

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def parse(text: str) -> list[DeviceReading]:
    """Every GPU of one `nvidia-smi -q -x` report; see the module docstring."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise UnexpectedOutput(f"not XML ({exc}): {quote(text, 80)!r}") from None
    if root.tag != "nvidia_smi_log":
        raise UnexpectedOutput(f"an XML document <{root.tag}>, not <nvidia_smi_log>")
    return [_reading(index, gpu) for index, gpu in enumerate(root.findall("gpu"))]


def _reading(index: int, gpu: ET.Element) -> DeviceReading:
    model = _text(gpu, "product_name")
    if model is None:
        raise UnexpectedOutput(f"<gpu> number {index} has no <product_name>")
    signals = [
        *_ecc_signals(gpu),
        *_retired_signals(gpu),
        *_remap_signals(gpu),
        *_clock_signals(gpu),
        *_temperature_signals(gpu),
        *_reset_signals(gpu),
    ]
    return DeviceReading(
        index=index,
        model=model,
        uuid=_text(gpu, "uuid") or "",
        memory_mib=_int(_text(gpu, "fb_memory_usage/total")),
        signals=tuple(signals),
    )


def _text(element: ET.Element, path: str) -> str | None:
    """The stripped text at `path`, None when absent or `N/A`."""
    found = element.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return None if value in ("", "N/A") else value


def _int(value: str | None) -> int | None:
    """The leading number of `value` ("81920 MiB", "27 C"), None when there is none."""
    match = _NUMBER.match(value or "")
    return int(float(match.group(1))) if match else None


def _sum(element: ET.Element, paths: tuple[str, ...]) -> int | None:
    """The sum of the numbers at `paths`; None when none of them is reported."""
    values = [_int(_text(element, path)) for path in paths]
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _ecc_signals(gpu: ET.Element) -> list[Signal]:
    signals = []
    for scope, name in (
        ("volatile", "ecc_uncorrectable"),
        ("aggregate", "ecc_uncorrectable_aggregate"),
    ):
        base = f"ecc_errors/{scope}"
        count = _sum(gpu, (f"{base}/dram_uncorrectable", f"{base}/sram_uncorrectable"))
        if count is None:
            count = _int(_text(gpu, f"{base}/double_bit/total"))
        if count is not None:
            signals.append(Signal(name, count, f"{scope} uncorrectable ECC errors: {count}"))
    base = "ecc_errors/volatile"
    corrected = _sum(gpu, (f"{base}/dram_correctable", f"{base}/sram_correctable"))
    if corrected is None:
        corrected = _int(_text(gpu, f"{base}/single_bit/total"))
    if corrected is not None:
        signals.append(
            Signal("ecc_correctable", corrected, f"volatile correctable ECC errors: {corrected}")
        )
    return signals


def _retired_signals(gpu: ET.Element) -> list[Signal]:
    signals = []
    pending = _text(gpu, "retired_pages/pending_retirement")
    if pending is not None:
        signals.append(
            Signal("retired_pages_pending", pending, f"page retirement pending: {pending}")
        )
    retired = _sum(
        gpu,
        (
            "retired_pages/multiple_single_bit_retirement/retired_count",
            "retired_pages/double_bit_retirement/retired_count",
        ),
    )
    if retired is not None:
        signals.append(Signal("retired_pages", retired, f"retired pages: {retired}"))
    return signals


def _remap_signals(gpu: ET.Element) -> list[Signal]:
    fields = (
        ("remapped_rows_pending", "remapped_row_pending", "row remap pending"),
        ("remapped_rows_failure", "remapped_row_failure", "row remap failure"),
    )
    signals = []
    for name, tag, words in fields:
        value = _text(gpu, f"remapped_rows/{tag}")
        if value is not None:
            signals.append(Signal(name, value, f"{words}: {value}"))
    uncorrectable = _int(_text(gpu, "remapped_rows/remapped_row_unc"))
    if uncorrectable is not None:
        signals.append(
            Signal(
                "remapped_rows_uncorrectable",
                uncorrectable,
                f"rows remapped for uncorrectable errors: {uncorrectable}",
            )
        )
    return signals


_REASONS = {
    "hw_slowdown": ("hw_slowdown",),
    "thermal_throttle": ("hw_thermal_slowdown", "sw_thermal_slowdown"),
    "power_brake": ("hw_power_brake_slowdown",),
}


def _reason_group(gpu: ET.Element) -> tuple[ET.Element, str] | None:
    """The clock-reason element and its tags' prefix: drivers from 535 write
    `clocks_event_reason_*`, older ones `clocks_throttle_reason_*`."""
    for group, prefix in (
        ("clocks_event_reasons", "clocks_event_reason_"),
        ("clocks_throttle_reasons", "clocks_throttle_reason_"),
    ):
        element = gpu.find(group)
        if element is not None:
            return element, prefix
    return None


def _clock_signals(gpu: ET.Element) -> list[Signal]:
    """Clock slowdowns the hardware or the driver imposed, as Active / Not Active."""
    found = _reason_group(gpu)
    if found is None:
        return []
    element, prefix = found
    signals = []
    for name, reasons in _REASONS.items():
        states = {reason: _text(element, prefix + reason) for reason in reasons}
        known = {reason: state for reason, state in states.items() if state is not None}
        if not known:
            continue
        active = [reason for reason, state in known.items() if state == "Active"]
        value = "Active" if active else "Not Active"
        detail = f"clock slowdown {', '.join(active)}: Active" if active else f"{name}: Not Active"
        signals.append(Signal(name, value, detail))
    return signals


def _temperature_signals(gpu: ET.Element) -> list[Signal]:
    temperature = _int(_text(gpu, "temperature/gpu_temp"))
    if temperature is None:
        return []
    signals = [Signal("temperature_c", temperature, f"GPU temperature {temperature} C")]
    slowdown = _int(_text(gpu, "temperature/gpu_temp_slow_threshold"))
    if slowdown is not None:
        margin = slowdown - temperature
        detail = f"GPU temperature {temperature} C, slowdown threshold {slowdown} C"
        signals.append(Signal("temperature_margin_c", margin, detail))
    return signals


def _reset_signals(gpu: ET.Element) -> list[Signal]:
    fields = (
        ("reset_required", "gpu_reset_status/reset_required", "GPU reset required"),
        (
            "drain_and_reset_recommended",
            "gpu_reset_status/drain_and_reset_recommended",
            "drain and reset recommended",
        ),
        ("recovery_action", "gpu_recovery_action", "driver's recovery action"),
    )
    signals = []
    for name, path, words in fields:
        value = _text(gpu, path)
        if value is not None:
            signals.append(Signal(name, value, f"{words}: {value}"))
    return signals
