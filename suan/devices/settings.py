"""The server config's device-health settings (`local.health`) and the watch they make.

local:
  devices: 8xH100
  health:
    enabled: auto          # auto (on when devices are detected, off for simulated slots) | on | off
    periodSeconds: 60      # how often the vendor's tool is read
    timeoutSeconds: 5      # how long one reading may take before it is killed
    reader: tool           # tool (the vendor's CLI) | nvml (NVIDIA only, suan[nvidia])
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from suan.catalog import Catalog
from suan.cluster.model import Node
from suan.devices.model import ToolReport
from suan.devices.runner import DEFAULT_TIMEOUT_S
from suan.devices.vendors import read_with_tool
from suan.devices.watch import DeviceWatch
from suan.errors import FieldProblem, SpecError

DEFAULT_PERIOD_S = 60.0
"""Meta's RSC clusters run their health checks every 5 minutes (arXiv 2410.21680); a reading
costs milliseconds of the server's CPU (bench/device_health.py: 3 ms for an 8-GPU report), so
once a minute finds a fault five times sooner at no real cost."""


class HealthSettings(BaseModel):
    """`local.health`: see the module docstring."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    enabled: Literal["auto", "on", "off"] = "auto"
    period_s: float = Field(default=DEFAULT_PERIOD_S, gt=0, le=86_400, alias="periodSeconds")
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=300, alias="timeoutSeconds")
    reader: Literal["tool", "nvml"] = "tool"


def watch_for_node(
    node: Node, settings: HealthSettings, catalog: Catalog, simulated: bool
) -> DeviceWatch | None:
    """The watch for the local node, or None when health reading is off (or the node has no
    accelerator). With real devices the tool must see all of them (`devices_missing`)."""
    wanted = settings.enabled == "on" or (settings.enabled == "auto" and not simulated)
    if not wanted or node.accelerator is None:
        return None
    vendor = catalog.get(node.accelerator).vendor
    if settings.reader == "nvml" and vendor != "nvidia":
        problem = FieldProblem(
            "local.health.reader", f"nvml reads NVIDIA devices; this node has {vendor}", "tool"
        )
        raise SpecError("server config", [problem])
    if settings.reader == "nvml":
        from suan.devices.nvml import NvmlReader

        read = NvmlReader().read
    else:
        timeout = settings.timeout_s

        def read() -> ToolReport:
            return read_with_tool(vendor, timeout)

    expected = None if simulated else node.devices
    return DeviceWatch(read, settings.period_s, expected_devices=expected)
