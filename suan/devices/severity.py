"""How bad each device signal is, as data, and the verdict on a node from one tool report.

    table = default_severity_table()          # suan/catalog/device_health.yaml
    verdict = judge(report, table, expected_devices=8)
    verdict.severity, verdict.unhealthy_devices, verdict.reason

The table's rows are (vendor or `*`, signal, one condition) -> severity, each with a one-line
`why` and its `source` (docs/devices.md). A vendor's own rows for a signal replace the `*` rows
for that signal. Unknown health (the tool missing, hung, failed or unreadable) is its own
verdict: severity `ok`, `unknown` set to the tool's message, shown but never a cordon.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from suan.devices.model import DeviceReading, Severity, Signal, ToolReport
from suan.errors import SpecError
from suan.problems import describe_errors
from suan.specfile import load_file

BUILTIN_TABLE = Path(__file__).resolve().parent.parent / "catalog" / "device_health.yaml"
OPERATORS = ("above", "at_least", "below", "at_most", "is", "in", "not_in")
"""The conditions a rule may test, exactly one per rule."""
DEVICE_FATAL = (Severity.CORDON, Severity.DRAIN)
"""Severities that also take the device itself out of allocation (`unhealthy_devices`)."""


class Rule(BaseModel):
    """One row of the table; see the module docstring and docs/devices.md."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    vendor: str = Field(min_length=1)
    signal: str = Field(min_length=1)
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    is_: str | float | None = Field(default=None, alias="is")
    in_: tuple[str | float, ...] | None = Field(default=None, alias="in")
    not_in: tuple[str | float, ...] | None = None
    severity: Severity
    why: str = Field(min_length=1)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_condition(self) -> Rule:
        given = [name for name in OPERATORS if self.condition_value(name) is not None]
        if len(given) != 1:
            raise ValueError(f"needs exactly one condition of {', '.join(OPERATORS)}")
        return self

    def condition_value(self, name: str) -> Any:
        return getattr(self, {"is": "is_", "in": "in_"}.get(name, name))

    @property
    def condition(self) -> tuple[str, Any]:
        """(operator, operand) of the rule's one condition."""
        return next(
            (n, self.condition_value(n)) for n in OPERATORS if self.condition_value(n) is not None
        )

    def matches(self, value: float | str) -> bool:
        """Whether a signal's `value` meets the condition; a string never meets a numeric one."""
        operator, operand = self.condition
        if operator in ("is", "in", "not_in"):
            options = (operand,) if operator == "is" else operand
            found = any(_same(value, option) for option in options)
            return not found if operator == "not_in" else found
        number = _number(value)
        if number is None:
            return False
        return {
            "above": number > operand,
            "at_least": number >= operand,
            "below": number < operand,
            "at_most": number <= operand,
        }[operator]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _same(value: Any, option: Any) -> bool:
    left, right = _number(value), _number(option)
    if left is not None and right is not None:
        return left == right
    return str(value).strip().casefold() == str(option).strip().casefold()


class _TableFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]


class SeverityTable:
    """The rules, looked up by (vendor, signal) with a vendor's own rows first."""

    def __init__(self, rules: list[Rule] | tuple[Rule, ...]):
        self.rules = tuple(rules)
        self._by_key: dict[tuple[str, str], tuple[Rule, ...]] = {}
        for rule in self.rules:
            key = (rule.vendor, rule.signal)
            self._by_key[key] = (*self._by_key.get(key, ()), rule)

    def rules_for(self, vendor: str, signal: str) -> tuple[Rule, ...]:
        """The vendor's own rows for `signal`, else the `*` rows."""
        return self._by_key.get((vendor, signal)) or self._by_key.get(("*", signal), ())

    def judge_signal(self, vendor: str, signal: Signal) -> Rule | None:
        """The matching rule of the worst severity, None when no rule matches."""
        matched = [
            rule for rule in self.rules_for(vendor, signal.name) if rule.matches(signal.value)
        ]
        return max(matched, key=lambda rule: rule.severity.rank, default=None)


def load_severity_table(path: Path = BUILTIN_TABLE) -> SeverityTable:
    """Read a table file; a mistake is a SpecError naming the file and the row's field."""
    document = load_file(path)
    try:
        parsed = _TableFile.model_validate(document)
    except ValidationError as exc:
        raise SpecError(str(path), describe_errors(exc, _TableFile)) from None
    return SeverityTable(parsed.rules)


@lru_cache(maxsize=1)
def default_severity_table() -> SeverityTable:
    """The built-in table, loaded once."""
    return load_severity_table()


@dataclass(frozen=True)
class Finding:
    """One signal of one device that a rule matched. `device` is None for the node as a
    whole (a missing device)."""

    device: int | None
    model: str
    signal: Signal
    rule: Rule

    def text(self) -> str:
        where = "node" if self.device is None else f"device {self.device}"
        if self.model:
            where += f" ({self.model})"
        said = self.signal.detail or f"{self.signal.name} {self.signal.value}"
        return f"{self.rule.severity}: {where} {self.signal.name}: {said}"


@dataclass(frozen=True)
class NodeVerdict:
    """What one tool report means for the node: the worst severity found, the devices to take
    out of allocation, the findings (worst first), and `unknown` when health is unknown."""

    vendor: str
    tool: str
    severity: Severity = Severity.OK
    unhealthy_devices: frozenset[int] = frozenset()
    findings: tuple[Finding, ...] = ()
    unknown: str = ""

    @property
    def reason(self) -> str:
        """The text a node shows: "health unknown: <tool message>", or the findings, worst
        first, each naming the device, the signal and the tool's words; "" when all is well."""
        if self.unknown:
            return f"health unknown: {self.unknown}"
        return "; ".join(finding.text() for finding in self.findings)


def judge(
    report: ToolReport, table: SeverityTable, expected_devices: int | None = None
) -> NodeVerdict:
    """The verdict on one report. `expected_devices` is how many devices the node should have
    (None: not checked); fewer in the report gives the node-level signal `devices_missing`."""
    if report.unknown:
        return NodeVerdict(report.vendor, report.tool, unknown=report.unknown)
    findings = [
        Finding(device.index, device.model, signal, rule)
        for device in report.devices
        for signal in device.signals
        if (rule := table.judge_signal(report.vendor, signal)) is not None
    ]
    missing = _missing(report.devices, expected_devices, report.tool)
    if missing is not None and (rule := table.judge_signal(report.vendor, missing)) is not None:
        findings.append(Finding(None, "", missing, rule))
    findings.sort(key=lambda finding: -finding.rule.severity.rank)
    fatal = {f.device for f in findings if f.device is not None and f.rule.severity in DEVICE_FATAL}
    return NodeVerdict(
        report.vendor,
        report.tool,
        severity=Severity.worst([finding.rule.severity for finding in findings]),
        unhealthy_devices=frozenset(fatal),
        findings=tuple(findings),
    )


def _missing(devices: tuple[DeviceReading, ...], expected: int | None, tool: str) -> Signal | None:
    if expected is None or len(devices) >= expected:
        return None
    gone = expected - len(devices)
    return Signal("devices_missing", gone, f"{tool} sees {len(devices)} of {expected} devices")
