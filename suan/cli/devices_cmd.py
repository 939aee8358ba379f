"""`suan devices`: this machine's accelerators and their health, from each vendor's own tool;
`suan devices check`: the verdict in one line and an exit code, for Slurm's HealthCheckProgram.

    suan devices [-o json|yaml|wide]               # per tool: devices, signals, the verdict
    suan devices check [--slurm-drain] [--node NAME]

Runs on the machine itself; no server is needed. Exit codes of `check`: 0 ok, warn or
degrade; 1 cordon or drain; 3 health unknown (no vendor tool on PATH, or one that is missing,
hung, failed or printed something unexpected); 2 a usage mistake (docs/devices.md).
"""

from __future__ import annotations

import socket
from typing import Annotated, Any

import typer

from suan.catalog import default_catalog
from suan.cli.listing import (
    Column,
    JsonOption,
    Listing,
    NoHeaderOption,
    Output,
    OutputOption,
    chosen,
    note,
    show,
)
from suan.devices.check import NodeCheck, ToolCheck, check_node
from suan.devices.discover import catalog_type_of, discover
from suan.devices.model import DeviceReading, Severity
from suan.devices.runner import DEFAULT_TIMEOUT_S
from suan.devices.severity import SeverityTable, default_severity_table
from suan.devices.slurm_drain import drain_in_slurm

devices_app = typer.Typer(
    help="This machine's accelerators and their health, from each vendor's own tool.",
    invoke_without_command=True,
    no_args_is_help=False,
)
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        max=300,
        help="Seconds each vendor tool may take before it is killed (health unknown).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the `devices` command group to `app`."""
    app.add_typer(devices_app, name="devices")


DEVICE_COLUMNS = (
    Column("TOOL"), Column("INDEX"), Column("MODEL"), Column("TYPE"), Column("MEMORY"),
    Column("UUID", wide=True), Column("SIGNALS"),
)


@devices_app.callback(invoke_without_command=True)
def show_devices(
    ctx: typer.Context,
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_S,
) -> None:
    """Every vendor tool found on PATH: its devices (index, model, catalog type, memory),
    their signals with the severity the table gives them, and the node's verdict. A table
    has one row per device; the line per tool and the verdict follow it (on stderr in a
    pipe)."""
    if ctx.invoked_subcommand is not None:
        return
    shown = chosen(output, as_json)
    result = check_node(discover(timeout_s=timeout))
    record = check_record(result, default_severity_table())
    rows = [_device_row(tool, device) for tool in record["tools"] for device in tool["devices"]]
    show(Listing(DEVICE_COLUMNS, rows, record), shown, no_header)
    if shown in (Output.TABLE, Output.WIDE):
        for tool in record["tools"]:
            note(tool_summary(tool))
        note(f"verdict: {result.line()}")


@devices_app.command("check")
def check(
    slurm_drain: Annotated[
        bool,
        typer.Option(
            "--slurm-drain",
            help="On a cordon or drain verdict, drain this node in Slurm (scontrol update).",
        ),
    ] = False,
    node: Annotated[
        str | None,
        typer.Option("--node", help="The Slurm node name (default: hostname -s)."),
    ] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_S,
) -> None:
    """Print the verdict in one line; exit 0 (ok, warn, degrade), 1 (cordon, drain) or 3
    (health unknown)."""
    if node is not None and not slurm_drain:
        raise typer.BadParameter("--node names the Slurm node to drain; it needs --slurm-drain")
    result = check_node(discover(timeout_s=timeout))
    line = result.line()
    if slurm_drain and result.takes_node_out:
        line += " | " + drain_in_slurm(node or short_hostname(), result.reason)
    typer.echo(line)
    raise typer.Exit(result.exit_code)


def short_hostname() -> str:
    """This machine's name up to the first dot (`hostname -s`), Slurm's usual NodeName."""
    return socket.gethostname().split(".")[0]


def check_record(result: NodeCheck, table: SeverityTable) -> dict[str, Any]:
    """The JSON of `suan devices --json`."""
    return {
        "node": short_hostname(),
        "verdict": {
            "severity": None if result.unknown else str(result.severity),
            "unknown": result.unknown,
            "reason": result.reason,
            "line": result.line(),
            "exit_code": result.exit_code,
        },
        "tools": [tool_record(tool, table) for tool in result.tools],
    }


def tool_record(tool: ToolCheck, table: SeverityTable) -> dict[str, Any]:
    """One vendor tool's part of the JSON."""
    found, verdict = tool.discovery, tool.verdict
    return {
        "vendor": found.vendor,
        "tool": found.tool,
        "accelerator": found.accelerator,
        "count": found.count,
        "problem": found.problem,
        "verdict": {
            "severity": None if verdict.unknown else str(verdict.severity),
            "unknown": verdict.unknown,
            "reason": verdict.reason,
            "unhealthy_devices": sorted(verdict.unhealthy_devices),
        },
        "devices": [device_record(found.vendor, r, table) for r in found.readings],
    }


def device_record(vendor: str, reading: DeviceReading, table: SeverityTable) -> dict[str, Any]:
    """One device: identity, catalog type, memory and every signal with its severity."""
    signals = []
    for signal in reading.signals:
        rule = table.judge_signal(vendor, signal)
        signals.append(
            {
                "name": signal.name,
                "value": signal.value,
                "detail": signal.detail,
                "severity": str(rule.severity if rule else Severity.OK),
                "why": rule.why if rule else "",
            }
        )
    return {
        "index": reading.index,
        "model": reading.model,
        "uuid": reading.uuid,
        "type": catalog_type_of(reading.model, vendor, default_catalog()),
        "memory_mib": reading.memory_mib,
        "signals": signals,
    }


def tool_summary(tool: dict[str, Any]) -> str:
    """One vendor tool's line: the tool, its vendor, what it found and any problem."""
    text = f"{tool['tool']} ({tool['vendor']}): {tool['count']} device(s)"
    if tool["accelerator"]:
        text += f" of type {tool['accelerator']}"
    if tool["problem"]:
        text += f"; {tool['problem']}"
    return text


def _device_row(tool: dict[str, Any], device: dict[str, Any]) -> list[Any]:
    memory = device["memory_mib"]
    return [
        tool["tool"],
        device["index"],
        device["model"] or "-",
        device["type"] or "-",
        f"{memory / 1024:.1f} GiB" if memory is not None else "-",
        device["uuid"] or "-",
        ", ".join(_signal_text(signal) for signal in device["signals"]),
    ]


def _signal_text(signal: dict[str, Any]) -> str:
    text = f"{signal['name']}={signal['value']}"
    return text if signal["severity"] == Severity.OK else f"{text} [{signal['severity']}]"
