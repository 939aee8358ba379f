"""Which module reads each vendor's devices: catalog vendor name -> parser module.

    source = health_source("nvidia")     # VendorHealth(vendor, tool argv, parse)
    report = read_with_tool("nvidia", timeout_s=5)

Each module named here has `TOOL` (the argv to run), `parse(text) -> list[DeviceReading]`
(raising `UnexpectedOutput` on anything it does not recognise) and `SIGNALS` (signal name ->
the tool's field). Keys are the catalog's `vendor` values (suan/catalog/accelerators.yaml), so
a node's accelerator type leads to its reader with no vendor branch anywhere. Modules are
imported only when a vendor is read. A vendor with no module here has unknown health, with a
message saying so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from suan.devices.model import DeviceReading, ToolReport
from suan.devices.runner import DEFAULT_TIMEOUT_S, run_tool

VENDOR_MODULES: dict[str, str] = {
    "nvidia": "suan.devices.nvidia",
    "amd": "suan.devices.amd",
    "huawei": "suan.devices.ascend",
    "cambricon": "suan.devices.cambricon",
    "hygon": "suan.devices.hygon",
    "kunlunxin": "suan.devices.kunlunxin",
    "moorethreads": "suan.devices.mthreads",
    "iluvatar": "suan.devices.iluvatar",
    "metax": "suan.devices.metax",
}
"""Catalog vendor -> the module that reads its management tool (see the module docstring)."""


@dataclass(frozen=True)
class VendorHealth:
    """How to read one vendor's devices: the tool's argv and the parser of its output."""

    vendor: str
    tool: tuple[str, ...]
    parse: Callable[[str], list[DeviceReading]]


def health_source(vendor: str) -> VendorHealth | None:
    """The registered reader of `vendor`, None when there is none."""
    name = VENDOR_MODULES.get(vendor)
    if name is None:
        return None
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None  # an install without this reader: health unknown, said so
    return VendorHealth(vendor, tuple(module.TOOL), module.parse)


def read_with_tool(
    vendor: str, timeout_s: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None
) -> ToolReport:
    """Run `vendor`'s tool once and parse it; never raises for a tool's failure."""
    source = health_source(vendor)
    if source is None:
        known = ", ".join(sorted(VENDOR_MODULES))
        message = f"no health reader for vendor {vendor!r} (readers: {known})"
        return ToolReport(vendor, "", unknown=message)
    return run_tool(vendor, source.tool, source.parse, timeout_s, env)
