"""NVIDIA through NVML (`nvidia-ml-py`, the optional extra `suan[nvidia]`), into the same
`DeviceReading`/`Signal` shape as the nvidia-smi parser, plus XID events.

    reader = NvmlReader()            # imports pynvml lazily; or NvmlReader(nvml=module)
    report = reader.read()           # ToolReport(vendor="nvidia", tool="nvml", ...)

Signals: `ecc_uncorrectable` / `ecc_uncorrectable_aggregate` / `ecc_correctable`
(nvmlDeviceGetTotalEccErrors), `retired_pages_pending` (nvmlDeviceGetRetiredPagesPendingStatus),
`remapped_rows_pending` / `remapped_rows_failure` / `remapped_rows_uncorrectable`
(nvmlDeviceGetRemappedRows), `hw_slowdown` / `thermal_throttle` / `power_brake`
(nvmlDeviceGetCurrentClocksThrottleReasons), `temperature_c` / `temperature_margin_c`
(nvmlDeviceGetTemperature and the slowdown threshold), `link_down` / `links_up`
(nvmlDeviceGetNvLinkState over NVML_NVLINK_MAX_LINKS; a link NVML does not support is not a
link), and `xid` (XidCriticalError events from an event set registered at the first read and
drained without waiting at every read; an XID stays on its device for the reader's life,
since it needs a reset or an operator either way).

A query the GPU does not support (NVMLError) gives no signal. NVML missing or failing to
initialise gives a report with `unknown` set. Not run on a GPU here: tests drive it with a
small fake module that answers as the NVML documentation describes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from suan.devices.model import DeviceReading, Signal, ToolReport

TOOL = "nvml"
MIB = 1 << 20

_THROTTLE_BITS = {
    # signal: (the reason as nvidia-smi names it, the NVML constant, its documented value)
    "hw_slowdown": (("hw_slowdown", "nvmlClocksThrottleReasonHwSlowdown", 0x8),),
    "thermal_throttle": (
        ("sw_thermal_slowdown", "nvmlClocksThrottleReasonSwThermalSlowdown", 0x20),
        ("hw_thermal_slowdown", "nvmlClocksThrottleReasonHwThermalSlowdown", 0x40),
    ),
    "power_brake": (
        ("hw_power_brake_slowdown", "nvmlClocksThrottleReasonHwPowerBrakeSlowdown", 0x80),
    ),
}


def _import_pynvml() -> ModuleType | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    return pynvml


class NvmlReader:
    """Reads every GPU through NVML; keeps NVML initialised and an XID event set between reads.
    `nvml` is the pynvml module (None: import it)."""

    def __init__(self, nvml: Any = None, clock: Callable[[], float] = time.time):
        self.nvml = nvml if nvml is not None else _import_pynvml()
        self.clock = clock
        self._ready = False
        self._events: Any = None
        self._handles: list[Any] = []
        self._xids: dict[int, list[Signal]] = {}

    def read(self) -> ToolReport:
        """One reading of every GPU; see the module docstring."""
        nvml = self.nvml
        if nvml is None:
            return ToolReport(
                "nvidia", TOOL, unknown="nvidia-ml-py is not installed (suan[nvidia])"
            )
        try:
            self._start()
            self._drain_xids()
            devices = tuple(self._device(index, h) for index, h in enumerate(self._handles))
        except nvml.NVMLError as exc:
            self._ready = False
            return ToolReport("nvidia", TOOL, unknown=f"NVML: {exc}")
        return ToolReport("nvidia", TOOL, devices=devices)

    def _start(self) -> None:
        if self._ready:
            return
        nvml = self.nvml
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self._events = nvml.nvmlEventSetCreate()
        for handle in self._handles:
            self._quiet(
                nvml.nvmlDeviceRegisterEvents,
                handle,
                nvml.nvmlEventTypeXidCriticalError,
                self._events,
            )
        self._ready = True

    def _quiet(self, call: Callable[..., Any], *args: Any) -> Any:
        """`call(*args)`, or None when NVML says the GPU does not support it."""
        try:
            return call(*args)
        except self.nvml.NVMLError:
            return None

    def _drain_xids(self) -> None:
        """Take every XID event waiting in the set, without waiting for more."""
        nvml = self.nvml
        while True:
            try:
                event = nvml.nvmlEventSetWait_v2(self._events, 0)
            except nvml.NVMLError_Timeout:
                return
            index = self._index_of(event.device)
            if index is None:
                continue
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.clock()))
            xid = int(event.eventData)
            detail = f"Xid {xid} at {stamp} UTC"
            self._xids.setdefault(index, []).append(Signal("xid", xid, detail))

    def _index_of(self, handle: Any) -> int | None:
        for index, known in enumerate(self._handles):
            if known == handle:
                return index
        return None

    def _device(self, index: int, handle: Any) -> DeviceReading:
        nvml = self.nvml
        name = nvml.nvmlDeviceGetName(handle)
        uuid = self._quiet(nvml.nvmlDeviceGetUUID, handle) or ""
        memory = self._quiet(nvml.nvmlDeviceGetMemoryInfo, handle)
        signals = [
            *self._ecc(handle),
            *self._pages(handle),
            *self._throttle(handle),
            *self._temperature(handle),
            *self._links(handle),
            *self._xids.get(index, []),
        ]
        return DeviceReading(
            index=index,
            model=_text(name),
            uuid=_text(uuid),
            memory_mib=int(memory.total) // MIB if memory is not None else None,
            signals=tuple(signals),
        )

    def _ecc(self, handle: Any) -> list[Signal]:
        nvml = self.nvml
        queries = (
            (
                "ecc_uncorrectable",
                nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                nvml.NVML_VOLATILE_ECC,
                "volatile uncorrectable",
            ),
            (
                "ecc_uncorrectable_aggregate",
                nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                nvml.NVML_AGGREGATE_ECC,
                "aggregate uncorrectable",
            ),
            (
                "ecc_correctable",
                nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                nvml.NVML_VOLATILE_ECC,
                "volatile correctable",
            ),
        )
        signals = []
        for name, kind, counter, words in queries:
            count = self._quiet(nvml.nvmlDeviceGetTotalEccErrors, handle, kind, counter)
            if count is not None:
                signals.append(Signal(name, int(count), f"{words} ECC errors: {int(count)}"))
        return signals

    def _pages(self, handle: Any) -> list[Signal]:
        nvml = self.nvml
        signals = []
        pending = self._quiet(nvml.nvmlDeviceGetRetiredPagesPendingStatus, handle)
        if pending is not None:
            value = _yes(pending == nvml.NVML_FEATURE_ENABLED)
            signals.append(
                Signal("retired_pages_pending", value, f"page retirement pending: {value}")
            )
        rows = self._quiet(nvml.nvmlDeviceGetRemappedRows, handle)
        if rows is not None:
            _, uncorrectable, pending_remap, failed = rows
            signals += [
                Signal(
                    "remapped_rows_pending",
                    _yes(pending_remap),
                    f"row remap pending: {_yes(pending_remap)}",
                ),
                Signal("remapped_rows_failure", _yes(failed), f"row remap failure: {_yes(failed)}"),
                Signal(
                    "remapped_rows_uncorrectable",
                    int(uncorrectable),
                    f"rows remapped for uncorrectable errors: {int(uncorrectable)}",
                ),
            ]
        return signals

    def _throttle(self, handle: Any) -> list[Signal]:
        nvml = self.nvml
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)  # driver 535+
        mask = self._quiet(reasons or nvml.nvmlDeviceGetCurrentClocksThrottleReasons, handle)
        if mask is None:
            return []
        signals = []
        for name, bits in _THROTTLE_BITS.items():
            active = [
                reason for reason, constant, value in bits if mask & getattr(nvml, constant, value)
            ]
            state = "Active" if active else "Not Active"
            detail = (
                f"clock slowdown {', '.join(active)}: Active" if active else f"{name}: Not Active"
            )
            signals.append(Signal(name, state, detail))
        return signals

    def _temperature(self, handle: Any) -> list[Signal]:
        nvml = self.nvml
        temperature = self._quiet(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        if temperature is None:
            return []
        signals = [Signal("temperature_c", int(temperature), f"GPU temperature {temperature} C")]
        slowdown = self._quiet(
            nvml.nvmlDeviceGetTemperatureThreshold, handle, nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        )
        if slowdown is not None:
            detail = f"GPU temperature {temperature} C, slowdown threshold {slowdown} C"
            signals.append(Signal("temperature_margin_c", int(slowdown) - int(temperature), detail))
        return signals

    def _links(self, handle: Any) -> list[Signal]:
        nvml = self.nvml
        states = [
            self._quiet(nvml.nvmlDeviceGetNvLinkState, handle, link)
            for link in range(nvml.NVML_NVLINK_MAX_LINKS)
        ]
        present = [(link, state) for link, state in enumerate(states) if state is not None]
        if not present:
            return []
        down = [link for link, state in present if state != nvml.NVML_FEATURE_ENABLED]
        detail = (
            f"NVLink links down: {', '.join(map(str, down))}" if down else "all NVLink links up"
        )
        return [
            Signal("link_down", len(down), detail),
            Signal(
                "links_up",
                len(present) - len(down),
                f"{len(present) - len(down)} of {len(present)} NVLink links up",
            ),
        ]


def _yes(flag: Any) -> str:
    return "Yes" if flag else "No"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
