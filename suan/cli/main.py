"""Entry point of the `suan` command: one Typer app, each command group in its own module.

User mistakes (`SuanError`) are printed as a clear message with exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from suan.cli import (
    catalog_cmd,
    control_cmd,
    demo_cmd,
    devices_cmd,
    goodput_cmd,
    jobs_cmd,
    nodes_cmd,
    plan_cmd,
    schedule_cmd,
    sim_cmd,
    snapshot_cmd,
    tokens_cmd,
)
from suan.errors import SuanError

cli = typer.Typer(
    name="suan",
    help="Suan: an operating system for AI supercomputers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (
    catalog_cmd,
    schedule_cmd,
    plan_cmd,
    demo_cmd,
    control_cmd,
    jobs_cmd,
    nodes_cmd,
    devices_cmd,
    sim_cmd,
    snapshot_cmd,
    tokens_cmd,
    goodput_cmd,
):
    module.register(cli)


def app() -> None:
    """Run the CLI; turn Suan's own errors into a message on stderr and exit code 2."""
    try:
        cli()
    except SuanError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    app()
