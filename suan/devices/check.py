"""This machine's device health as one verdict: what `suan devices` shows and what
`suan devices check` (a Slurm HealthCheckProgram) acts on.

    result = check_node(discover())
    result.severity, result.unknown, result.line(), result.exit_code

Every vendor tool found is judged on its own (suan.devices.severity.judge); the node's verdict
is the worst severity among the tools that answered. Health is unknown when no vendor tool is
on PATH, or when one that is could not be read and none of the others asks for a cordon or a
drain (a tool that answered with a fault is not hidden by another that failed).

Exit codes of `suan devices check`: 0 ok, warn or degrade; 1 cordon or drain; 3 health
unknown (2 is every suan command's code for a usage mistake).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from suan.devices.discover import Discovery, tool_names
from suan.devices.model import Severity
from suan.devices.severity import (
    DEVICE_FATAL,
    NodeVerdict,
    SeverityTable,
    default_severity_table,
    judge,
)

EXIT_SERVICEABLE = 0
"""ok, warn or degrade: the node may take new work."""
EXIT_TAKE_OUT = 1
"""cordon or drain: no new work on the node."""
EXIT_UNKNOWN = 3
"""health unknown: no vendor tool found, or one missing, hung, failed or unreadable."""

@dataclass(frozen=True)
class ToolCheck:
    """One vendor tool's discovery and its verdict."""

    discovery: Discovery
    verdict: NodeVerdict


@dataclass(frozen=True)
class NodeCheck:
    """The verdict on this machine from every vendor tool found (see the module docstring)."""

    tools: tuple[ToolCheck, ...]

    @property
    def severity(self) -> Severity:
        """The worst severity among the tools that answered (`ok` when none did)."""
        return Severity.worst([t.verdict.severity for t in self.tools if not t.verdict.unknown])

    @property
    def takes_node_out(self) -> bool:
        return self.severity in DEVICE_FATAL

    @property
    def unknown(self) -> str:
        """Why health is unknown ("" when it is known; see the module docstring)."""
        if not self.tools:
            return "no device tool on PATH (looked for " + ", ".join(tool_names()) + ")"
        if self.takes_node_out:
            return ""
        return "; ".join(t.verdict.unknown for t in self.tools if t.verdict.unknown)

    @property
    def reason(self) -> str:
        """The findings of the tools that answered, worst tool first ("" when none)."""
        judged = [t.verdict for t in self.tools if not t.verdict.unknown and t.verdict.reason]
        judged.sort(key=lambda verdict: -verdict.severity.rank)
        return "; ".join(verdict.reason for verdict in judged)

    @property
    def exit_code(self) -> int:
        if self.takes_node_out:
            return EXIT_TAKE_OUT
        return EXIT_UNKNOWN if self.unknown else EXIT_SERVICEABLE

    def line(self) -> str:
        """The verdict in one line: the findings, "health unknown: ...", or "ok: <devices>"."""
        if self.takes_node_out:
            return self.reason
        if self.unknown:
            return f"health unknown: {self.unknown}"
        found = ", ".join(
            f"{t.discovery.tool}: {t.discovery.count} x {_kind(t.discovery)}"
            for t in self.tools
            if t.discovery.count
        )
        return self.reason or f"ok: {found or 'no devices'}"


def _kind(found: Discovery) -> str:
    """The devices' catalog type, else the models the catalog does not know."""
    if found.accelerator:
        return found.accelerator
    named = [model for model in found.unmapped if model]
    if named:
        return " / ".join(named) + " (not in the catalog)"
    return "(model not named)" if found.unmapped else "(several types)"


def check_node(
    found: Sequence[Discovery], table: SeverityTable | None = None
) -> NodeCheck:
    """Judge every discovery against `table` (the built-in severity table by default)."""
    table = table or default_severity_table()
    return NodeCheck(tuple(ToolCheck(d, judge(d.report, table)) for d in found))
