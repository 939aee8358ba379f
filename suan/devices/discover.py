"""Which accelerators this machine has, found through each vendor's own management tool.

    found = discover()               # one Discovery per registered vendor tool on PATH
    best = detect_devices()          # the Discovery a node is built from, or None
    best.accelerator, best.count, best.vendor, best.readings

Every vendor of the registry (`suan.devices.vendors.VENDOR_MODULES`) whose tool is on PATH is
run once, all of them at the same time, each with the runner's timeout: a missing tool is not
run, and one that fails, hangs or prints something unexpected gives a Discovery whose `unknown`
says so (it never raises and never holds discovery up past its timeout).

Each reading's `model` is mapped to a catalog type (`catalog_type_of`): the model as the tool
prints it, then the spellings the rewrites of `REWRITES` make of it, each looked up with
`Catalog.find` (names and aliases, case and separators ignored), keeping only a type of the
tool's own vendor. A model no spelling finds is reported in `unmapped`, never guessed from a
similar name: the operator adds it (or an alias) in a catalog file of their own.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from suan.catalog import Catalog, default_catalog
from suan.devices.model import DeviceReading, ToolReport
from suan.devices.runner import DEFAULT_TIMEOUT_S, run_tool
from suan.devices.vendors import VENDOR_MODULES, VendorHealth, health_source

log = logging.getLogger("suan.devices")


@dataclass(frozen=True)
class Rewrite:
    """One way a vendor tool's model name differs from the catalog's: text matching `pattern`
    (on the case-folded name) is replaced by `replacement`. `vendor` is a catalog vendor or
    `*`; `why` says where the difference comes from."""

    vendor: str
    pattern: str
    replacement: str
    why: str

    def apply(self, text: str) -> str:
        return re.sub(self.pattern, self.replacement, text).strip()


BRANDS = (
    "nvidia", "tesla", "geforce", "amd", "instinct", "huawei", "ascend", "cambricon", "hygon",
    "kunlunxin", "iluvatar", "metax", "moore threads",
)  # fmt: skip
"""Words a tool may print before the model itself ("NVIDIA A10G", "Iluvatar BI-V150")."""

REWRITES: tuple[Rewrite, ...] = (
    Rewrite(
        "*",
        rf"^(?:(?:{'|'.join(BRANDS)})\s+)+",
        "",
        "tools put the maker or product line before the model (NVIDIA A10G, Tesla T4)",
    ),
    Rewrite(
        "nvidia",
        r"\s+(?:hbm\d?e?|gddr\d+x?)$",
        "",
        "nvidia-smi ends some names with the memory kind after the size (H100 80GB HBM3)",
    ),
    Rewrite(
        "huawei",
        r"^(910[a-z])\d+[a-z]?$",
        r"\1",
        "npu-smi names a 910 chip by generation, bin and variant (910B2C); the catalog type is "
        "the generation (910B)",
    ),
    Rewrite(
        "metax",
        r"^mx(?=c\d)",
        "",
        "mx-smi 2.1 prints MXC550 where mx-smi 2.2 prints MetaX C550",
    ),
)
"""The rewrites `catalog_type_of` tries, in order, each on the result of the ones before."""


def catalog_type_of(model: str, vendor: str, catalog: Catalog) -> str | None:
    """The catalog type of `vendor` that the tool's `model` names, or None (see the module
    docstring). Never a type of another vendor, never a near miss."""
    text = model.strip().casefold()
    spellings = [text]
    for rewrite in REWRITES:
        if rewrite.vendor in ("*", vendor):
            text = rewrite.apply(text)
            spellings.append(text)
    for spelling in spellings:
        accel = catalog.find(spelling) if spelling else None
        if accel is not None and accel.vendor == vendor:
            return accel.name
    return None


@dataclass(frozen=True)
class Discovery:
    """What one vendor tool found on this machine: its report (the readings, or why there are
    none), the catalog type of its devices when every one maps to the same type, and the
    models the catalog does not know."""

    report: ToolReport
    accelerator: str | None = None
    unmapped: tuple[str, ...] = ()

    @property
    def vendor(self) -> str:
        return self.report.vendor

    @property
    def tool(self) -> str:
        return self.report.tool

    @property
    def readings(self) -> tuple[DeviceReading, ...]:
        return self.report.devices

    @property
    def count(self) -> int:
        return len(self.report.devices)

    @property
    def problem(self) -> str:
        """Why the devices have no catalog type ("" when they have one, or there are none)."""
        if self.report.unknown:
            return f"health unknown: {self.report.unknown}"
        named = [model for model in self.unmapped if model]
        if named:
            models = ", ".join(repr(model) for model in named)
            return (
                f"{self.tool}: {'models' if len(named) > 1 else 'model'} {models} not in the "
                "accelerator catalog; add it (or an alias) in an operator catalog file "
                "(SUAN_CATALOG, docs/catalog.md)"
            )
        if self.unmapped:
            return f"{self.tool} does not name the model of its devices"
        if self.accelerator is None and self.count:
            return f"{self.tool}: devices of several types on one node"
        return ""


def discover(
    catalog: Catalog | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> list[Discovery]:
    """One Discovery per registered vendor whose tool is on PATH (`env`'s PATH when given),
    in registry order; the tools run at the same time, each killed after `timeout_s`."""
    catalog = catalog or default_catalog()
    sources = present_tools(env)
    if not sources:
        return []
    with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="suan-discover") as pool:
        reports = list(pool.map(lambda source: _read(source, timeout_s, env), sources))
    return [classify(report, catalog) for report in reports]


def _read(source: VendorHealth, timeout_s: float, env: dict[str, str] | None) -> ToolReport:
    """One tool's report; a parser's own bug is shown as unknown health, not raised."""
    try:
        return run_tool(source.vendor, source.tool, source.parse, timeout_s, env)
    except Exception as exc:  # a reader's bug must not stop discovery (or the server's start)
        log.exception("reading %s failed", source.tool[0])
        return ToolReport(source.vendor, source.tool[0], unknown=f"reading failed: {exc}")


def present_tools(env: dict[str, str] | None = None) -> list[VendorHealth]:
    """The registered vendor readers whose tool is on PATH."""
    path = (env or os.environ).get("PATH")
    sources = [health_source(vendor) for vendor in VENDOR_MODULES]
    return [s for s in sources if s is not None and shutil.which(s.tool[0], path=path)]


def tool_names() -> list[str]:
    """The tool of every registered vendor reader, for messages ("looked for ...")."""
    sources = [health_source(vendor) for vendor in VENDOR_MODULES]
    return [source.tool[0] for source in sources if source is not None]


def classify(report: ToolReport, catalog: Catalog) -> Discovery:
    """The Discovery of one tool report: map each reading's model to a catalog type."""
    if report.unknown:
        return Discovery(report)
    types = {
        reading.model: catalog_type_of(reading.model, report.vendor, catalog)
        for reading in report.devices
    }
    unmapped = tuple(sorted(model for model, accel in types.items() if accel is None))
    mapped = set(types.values()) - {None}
    accelerator = mapped.pop() if len(mapped) == 1 and not unmapped else None
    return Discovery(report, accelerator, unmapped)


def detect_devices(
    catalog: Catalog | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> Discovery | None:
    """The discovery a node is built from: the tool that found the most devices of one catalog
    type (the first in registry order on a tie), or None when no tool did."""
    return best_discovery(discover(catalog, timeout_s, env))


def best_discovery(found: Sequence[Discovery]) -> Discovery | None:
    """Of `found`, the one with a catalog type and the most devices (first on a tie)."""
    typed = [discovery for discovery in found if discovery.accelerator and discovery.count]
    return max(typed, key=lambda discovery: discovery.count, default=None)
