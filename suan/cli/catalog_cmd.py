"""`suan catalog`: list the accelerator types Suan knows, or show one with its sources.

    suan catalog [-o json|yaml|wide] [--vendor V] [--file EXTRA.yaml ...]
    suan catalog show NAME [--json] [--file EXTRA.yaml ...]

The catalog is the built-in file plus the operator's files (`SUAN_CATALOG`, then `--file`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from suan.catalog.loader import load_catalog
from suan.catalog.model import AcceleratorType, Catalog, accelerator_record, normalise_name
from suan.cli.files import text_files
from suan.cli.listing import (
    Column,
    Listing,
    NoHeaderOption,
    Output,
    OutputOption,
    chosen,
    show,
)
from suan.errors import FieldProblem, SpecError

catalog_app = typer.Typer(
    help="The accelerator catalog: specs, link domains, allocation rules and sources.",
    invoke_without_command=True,
    no_args_is_help=False,
)

FilesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--file",
        "-f",
        help="An operator catalog file that adds or overrides types (repeatable).",
        callback=text_files,
        readable=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    """Add the `catalog` command group to `app`."""
    app.add_typer(catalog_app, name="catalog")


@catalog_app.callback(invoke_without_command=True)
def list_types(
    ctx: typer.Context,
    as_json: JsonOption = False,
    vendor: Annotated[
        str | None, typer.Option("--vendor", help="Only this vendor (e.g. nvidia, huawei).")
    ] = None,
    files: FilesOption = None,
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
) -> None:
    """List every accelerator type (the default when no subcommand is given)."""
    shown = chosen(output, as_json)
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"files": list(files or []), "json": shown is Output.JSON}
        return
    types = select_vendor(load_catalog(files), vendor)
    show(catalog_listing(types), shown, no_header)


@catalog_app.command("show")
def show_type(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A type name or alias, e.g. H100 or 910B.")],
    as_json: JsonOption = False,
    files: FilesOption = None,
) -> None:
    """Show one accelerator type with every field and the source of each figure.

    `--file` and `--json` given before `show` (to the group) count too.
    """
    group = ctx.obj if isinstance(ctx.obj, dict) else {}
    accel = load_catalog([*group.get("files", []), *(files or [])]).get(name)
    if as_json or group.get("json"):
        typer.echo(json.dumps(accelerator_record(accel), indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(detail_table(accel))
    console.print(sources_table(accel))


def select_vendor(catalog: Catalog, vendor: str | None) -> list[AcceleratorType]:
    """The catalog's types in file order; only `vendor`'s when given (case and separators are
    ignored). Raises SpecError for a vendor with no types."""
    if vendor is None:
        return list(catalog)
    wanted = normalise_name(vendor)
    chosen = [accel for accel in catalog if normalise_name(accel.vendor) == wanted]
    if not chosen:
        vendors = sorted({accel.vendor for accel in catalog})
        raise SpecError(
            "--vendor", [FieldProblem("vendor", f"no type of {vendor!r}", ", ".join(vendors))]
        )
    return chosen


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:g}{unit}"


def domains_text(accel: AcceleratorType) -> str:
    """Link domains as `4+4 MetaXLink`, with the supernode size when there is one."""
    text = "+".join(str(size) for size in accel.link_domains) + f" {accel.link}"
    if accel.supernode_devices:
        text += f" (supernode {accel.supernode_devices})"
    return text


CATALOG_COLUMNS = tuple(
    Column(header)
    for header in ("name", "vendor", "mem", "BW", "BF16", "FP8", "dev/node", "link domains",
                   "allocation", "visible devices", "collective")
)


def catalog_listing(types: list[AcceleratorType]) -> Listing:
    """The listing: one row per type; the records are the JSON of each type."""
    rows = [
        [
            accel.name,
            accel.vendor,
            _number(accel.memory_gib),
            _number(accel.memory_bandwidth_gbs),
            _number(accel.bf16_tflops),
            _number(accel.fp8_tflops),
            accel.devices_per_node,
            domains_text(accel),
            accel.allocation.describe(accel.devices_per_node),
            accel.visible_devices_env,
            accel.collective_backend,
        ]
        for accel in types
    ]
    return Listing(
        CATALOG_COLUMNS,
        rows,
        [accelerator_record(accel) for accel in types],
        title="Accelerator catalog (dense TFLOP/s; memory in GiB, bandwidth GB/s)",
    )


def detail_table(accel: AcceleratorType) -> Table:
    """Every field of one type, one per row."""
    table = Table(title=Text(accel.name), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("vendor", accel.vendor),
        ("aliases", ", ".join(accel.aliases) or "-"),
        ("memory", _number(accel.memory_gib, " GiB")),
        ("memory bandwidth", _number(accel.memory_bandwidth_gbs, " GB/s")),
        ("BF16 (dense)", _number(accel.bf16_tflops, " TFLOP/s")),
        ("FP8 (dense)", _number(accel.fp8_tflops, " TFLOP/s")),
        ("devices per node", str(accel.devices_per_node)),
        ("link domains", domains_text(accel)),
        ("link bandwidth", _number(accel.link_bandwidth_gbs, " GB/s per device")),
        ("allocation", accel.allocation.describe(accel.devices_per_node)),
        ("visible devices", accel.visible_devices_env),
        ("collective", f"{accel.collective_backend} (torch.distributed: {accel.dist_backend})"),
        ("torch", f"device {accel.torch_device}, package {accel.torch_plugin}"),
        ("relative speed", f"{accel.relative_speed:g} x V100-16GB"),
        ("notes", accel.notes or "-"),
    ]
    for field, value in rows:
        table.add_row(field, Text(value))
    return table


def sources_table(accel: AcceleratorType) -> Table:
    """Where each figure of `accel` comes from."""
    table = Table(title=f"Sources for {accel.name}")
    table.add_column("field", style="bold")
    table.add_column("source", overflow="fold")
    for field, source in accel.sources.items():
        table.add_row(field, Text(" ".join(source.split())))
    return table
