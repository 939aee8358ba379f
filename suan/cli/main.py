"""Entry point of the `suan` command: one Typer app, each command group in its own module.

User mistakes (`SuanError`, and a file named on the command line that cannot be read) are
printed as a clear message with exit code 2, never a traceback; the message is printed as
it is, brackets and all, never read as markup.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text

from suan.cli import (
    catalog_cmd,
    control_cmd,
    demo_cmd,
    devices_cmd,
    goodput_cmd,
    holds_cmd,
    jobs_cmd,
    nodes_cmd,
    plan_cmd,
    schedule_cmd,
    sim_cmd,
    snapshot_cmd,
    tokens_cmd,
)
from suan.cli.files import file_problem, installed_version
from suan.errors import SuanError

cli = typer.Typer(
    name="suan",
    help="Suan: an operating system for AI supercomputers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"suan {installed_version()}")
        raise typer.Exit()


@cli.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    """Suan: an operating system for AI supercomputers."""
for module in (
    catalog_cmd,
    schedule_cmd,
    plan_cmd,
    demo_cmd,
    control_cmd,
    jobs_cmd,
    holds_cmd,
    nodes_cmd,
    devices_cmd,
    sim_cmd,
    snapshot_cmd,
    tokens_cmd,
    goodput_cmd,
):
    module.register(cli)


def app() -> None:
    """Run the CLI; turn Suan's own errors, and a file that cannot be read, into a message on
    stderr and exit code 2."""
    sys.argv[1:] = jobs_cmd.with_watch_value(sys.argv[1:])
    try:
        cli()
    except SuanError as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.filename is None:
            raise
        _fail(file_problem(exc))


def _fail(message: str) -> None:
    shown = Text.assemble(("error:", "bold red"), " ", message)
    Console(stderr=True, soft_wrap=True).print(shown)
    sys.exit(2)


if __name__ == "__main__":
    app()
