"""What a vendor's tool says about its devices, in one shape for every vendor.

A parser turns the text of one tool run (`npu-smi info`, `amd-smi metric --json`, an NVML
read) into `DeviceReading`s: one per device, with its identity and the health `Signal`s the
tool reported. A parser never guesses: output it does not recognise raises `UnexpectedOutput`,
and the caller marks the devices "health unknown" with that message (`ToolReport.unknown`).
How bad each signal is lives in data (the catalog's severity table), not in the parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from suan.errors import SuanError


class Severity(StrEnum):
    """How a signal affects the device's node, mildest first.

    - `ok`: nothing to do;
    - `warn`: shown to the operator, no effect on scheduling;
    - `degrade`: the device (or node) is placed last;
    - `cordon`: no new work on the node; running gangs go on;
    - `drain`: cordon, then the node's gangs are stopped after a grace period and restarted
      elsewhere from their last checkpoint.
    """

    OK = "ok"
    WARN = "warn"
    DEGRADE = "degrade"
    CORDON = "cordon"
    DRAIN = "drain"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @classmethod
    def worst(cls, severities: list[Severity] | tuple[Severity, ...]) -> Severity:
        """The most severe of `severities` (`ok` when empty)."""
        return max(severities, key=lambda s: s.rank, default=cls.OK)


_ORDER = (Severity.OK, Severity.WARN, Severity.DEGRADE, Severity.CORDON, Severity.DRAIN)


class UnexpectedOutput(SuanError):
    """A tool printed something its parser does not recognise; the message says what."""


@dataclass(frozen=True)
class Signal:
    """One health reading of one device: `name` is the vendor-neutral signal name of the
    severity table (`xid`, `ecc_uncorrectable`, `retired_pages_pending`, `link_down`,
    `thermal_throttle`, `temperature_c`, `health`, ...), `value` what the tool said, and
    `detail` the tool's own words for it (shown to the operator)."""

    name: str
    value: float | str
    detail: str = ""


@dataclass(frozen=True)
class DeviceReading:
    """One device as its vendor's tool saw it. `index` is the tool's device index (the one the
    visible-devices variable takes); `memory_mib` is None when the tool does not say."""

    index: int
    model: str
    uuid: str = ""
    memory_mib: int | None = None
    signals: tuple[Signal, ...] = ()


@dataclass(frozen=True)
class ToolReport:
    """One run of one vendor tool on one node. `unknown` is empty when the tool answered and
    its output was understood; otherwise it is the reason health is unknown (the tool is
    missing, timed out, failed, or printed something unexpected), in words an operator can
    act on, and `devices` may be empty."""

    vendor: str
    tool: str
    devices: tuple[DeviceReading, ...] = ()
    unknown: str = ""
