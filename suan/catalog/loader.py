"""Read accelerator catalog files (YAML) into a `Catalog`.

File format (documented in docs/catalog.md):

    accelerators:
      - name: H100-SXM-80GB
        vendor: nvidia
        aliases: [H100, H100-SXM]
        memory_gib: 80
        ...
        allocation: {counts: [], domain_local_max: 0, module_size: 1}
        sources: {memory_gib: "NVIDIA H100 datasheet", ...}

The built-in file ships beside this module; operators add or override types in their own files,
named by `SUAN_CATALOG` (paths separated by `:`) or passed as `extra_paths`. An operator entry
whose name (or alias) is already in the catalog overrides that type: its fields replace the
existing ones, `allocation` and `sources` are merged key by key, and `aliases` are added to.
Every entry, merged or new, is then validated whole; every figure it sets needs a source.
Files are read by the loader every spec file shares (suan.specfile) and problems shaped as in
every spec file (suan.problems): `accelerators.3.memory_gib: -1 is out of range`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from suan.catalog.model import (
    AcceleratorType,
    AllocationRule,
    Catalog,
    normalise_name,
    roofline_relative_speed,
)
from suan.errors import FieldProblem, SpecError
from suan.problems import describe_errors, show_value
from suan.specfile import load_file

BUILTIN_PATH = Path(__file__).with_name("accelerators.yaml")

ALWAYS_SOURCED: tuple[str, ...] = ("memory_gib", "memory_bandwidth_gbs", "bf16_tflops")
"""Figures every entry must give a source for."""
SOURCED_WHEN_SET: tuple[str, ...] = (
    "fp8_tflops",
    "link_bandwidth_gbs",
    "supernode_devices",
    "relative_speed",
)
"""Figures that need a source whenever an entry sets them."""
MERGED_KEYS: tuple[str, ...] = ("allocation", "sources")
"""Mapping fields that an overriding entry merges key by key instead of replacing."""

PositiveInt = Annotated[int, Field(ge=1)]

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
KUBERNETES_RESOURCE_PATTERN = (
    rf"^$|^{_DNS_LABEL}(\.{_DNS_LABEL})+/[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?$"
)
"""A Kubernetes extended resource name (`<domain>/<name>`: a DNS subdomain outside
`kubernetes.io`, a slash, a name), or empty for a type without a known device plugin."""


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    counts: list[PositiveInt] = Field(default_factory=list)
    domain_local_max: int = Field(default=0, ge=0)
    module_size: int = Field(default=1, ge=1)


class _AcceleratorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    vendor: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    memory_gib: float = Field(gt=0)
    memory_bandwidth_gbs: float = Field(gt=0)
    bf16_tflops: float = Field(gt=0)
    fp8_tflops: float | None = Field(default=None, gt=0)
    devices_per_node: int = Field(ge=1, le=1024)
    link_domains: list[PositiveInt] = Field(default_factory=list)
    link: str = "PCIe"
    link_bandwidth_gbs: float = Field(default=32.0, gt=0)
    supernode_devices: int = Field(default=0, ge=0)
    allocation: _RuleSpec = Field(default_factory=_RuleSpec)
    visible_devices_env: str = Field(min_length=1)
    kubernetes_resource: str = Field(default="", pattern=KUBERNETES_RESOURCE_PATTERN)
    collective_backend: str = Field(min_length=1)
    dist_backend: str = ""
    torch_device: str = "cuda"
    torch_plugin: str = "torch"
    relative_speed: float | None = Field(default=None, gt=0)
    notes: str = ""
    peak_disputed: str = ""
    sources: dict[str, str] = Field(default_factory=dict)

    @field_validator("kubernetes_resource")
    @classmethod
    def _not_kubernetes_domain(cls, value: str) -> str:
        domain = value.partition("/")[0]
        if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
            raise ValueError("extended resources may not use the kubernetes.io domain")
        return value

    def domains(self) -> tuple[int, ...]:
        """The link domain sizes; one domain of the whole node when none are given."""
        return tuple(self.link_domains) or (self.devices_per_node,)

    def build(self) -> AcceleratorType:
        """The `AcceleratorType` of a validated spec; derives `relative_speed` when unset."""
        sources = dict(self.sources)
        speed = self.relative_speed
        if speed is None:
            speed = roofline_relative_speed(self.bf16_tflops, self.memory_bandwidth_gbs)
            sources.setdefault("relative_speed", _derived_speed_source(self))
        rule = AllocationRule(
            counts=tuple(sorted(self.allocation.counts)),
            domain_local_max=self.allocation.domain_local_max,
            module_size=self.allocation.module_size,
        )
        return AcceleratorType(
            name=self.name,
            vendor=self.vendor,
            memory_gib=self.memory_gib,
            memory_bandwidth_gbs=self.memory_bandwidth_gbs,
            bf16_tflops=self.bf16_tflops,
            fp8_tflops=self.fp8_tflops,
            devices_per_node=self.devices_per_node,
            link_domains=self.domains(),
            link=self.link,
            link_bandwidth_gbs=self.link_bandwidth_gbs,
            allocation=rule,
            visible_devices_env=self.visible_devices_env,
            collective_backend=self.collective_backend,
            torch_device=self.torch_device,
            torch_plugin=self.torch_plugin,
            aliases=tuple(self.aliases),
            supernode_devices=self.supernode_devices,
            relative_speed=speed,
            notes=" ".join(self.notes.split()),
            peak_disputed=" ".join(self.peak_disputed.split()),
            sources=sources,
            dist_backend=self.dist_backend or self.collective_backend,
            kubernetes_resource=self.kubernetes_resource,
        )


def _derived_speed_source(spec: _AcceleratorSpec) -> str:
    return (
        "derived: (bf16_tflops / 125) ** (2/3) * (memory_bandwidth_gbs / 900) ** (1/3), "
        f"i.e. ({spec.bf16_tflops:g} / 125) ** (2/3) * ({spec.memory_bandwidth_gbs:g} / 900) "
        "** (1/3), relative to V100-SXM2-16GB (docs/catalog.md)"
    )


def _layout_problems(spec: _AcceleratorSpec) -> list[FieldProblem]:
    """Node layout: link domains fill the node; a supernode is whole nodes."""
    problems = []
    nodes = spec.devices_per_node
    if spec.link_domains and sum(spec.link_domains) != nodes:
        problems.append(
            FieldProblem(
                "link_domains",
                f"sizes add up to {sum(spec.link_domains)}, not devices_per_node ({nodes})",
                f"domain sizes that add up to {nodes}, e.g. [{nodes}]",
            )
        )
    if spec.supernode_devices and spec.supernode_devices % nodes:
        problems.append(
            FieldProblem(
                "supernode_devices",
                f"{spec.supernode_devices} is not a whole number of {nodes}-device nodes",
                f"0 (no supernode) or a multiple of {nodes}",
            )
        )
    return problems


def _rule_problems(spec: _AcceleratorSpec) -> list[FieldProblem]:
    """Allocation rule: counts fit the node, domain and module sizes fit the layout."""
    rule, nodes, problems = spec.allocation, spec.devices_per_node, []
    for index, count in enumerate(rule.counts):
        if count > nodes:
            problems.append(
                FieldProblem(
                    f"allocation.counts.{index}", f"{count} exceeds the node size", f"1 to {nodes}"
                )
            )
    if len(set(rule.counts)) != len(rule.counts):
        problems.append(FieldProblem("allocation.counts", "lists a count twice", "distinct counts"))
    largest = max(spec.domains())
    if rule.domain_local_max > largest:
        problems.append(
            FieldProblem(
                "allocation.domain_local_max",
                f"{rule.domain_local_max} is larger than the largest link domain",
                f"0 (no rule) to {largest}",
            )
        )
    if nodes % rule.module_size or rule.module_size > largest:
        problems.append(
            FieldProblem(
                "allocation.module_size",
                f"{rule.module_size} does not divide the node into modules inside one link domain",
                f"a divisor of {nodes} no larger than {largest}",
            )
        )
    return problems


def _source_problems(spec: _AcceleratorSpec) -> list[FieldProblem]:
    """Every figure the entry gives has a source; every source names a field."""
    figures = [*ALWAYS_SOURCED, *(f for f in SOURCED_WHEN_SET if f in spec.model_fields_set)]
    missing = [f for f in figures if not spec.sources.get(f, "").strip()]
    problems = []
    if missing:
        problems.append(
            FieldProblem(
                "sources",
                f"no source for {', '.join(missing)}",
                "a citation per figure: datasheet, document, or measurement",
            )
        )
    for key in spec.sources:
        if key not in _AcceleratorSpec.model_fields:
            problems.append(
                FieldProblem(
                    f"sources.{key}",
                    "is not a field of an accelerator type",
                    "a field name such as memory_gib",
                )
            )
    return problems


def _name_problems(spec: _AcceleratorSpec) -> list[FieldProblem]:
    """Names and aliases must keep at least one letter or digit once separators go."""
    problems = []
    if not normalise_name(spec.name):
        problems.append(FieldProblem("name", "has no letters or digits", "e.g. H100-SXM-80GB"))
    for index, alias in enumerate(spec.aliases):
        if not normalise_name(alias):
            problems.append(FieldProblem(f"aliases.{index}", "has no letters or digits"))
    return problems


def spec_problems(spec: _AcceleratorSpec) -> list[FieldProblem]:
    """Cross-field problems of one entry, with paths relative to the entry."""
    return [
        *_name_problems(spec),
        *_layout_problems(spec),
        *_rule_problems(spec),
        *_source_problems(spec),
    ]


def read_yaml(path: Path) -> Any:
    """The one YAML document of a catalog file, read with the loader every spec file shares
    (suan.specfile: size, depth and alias limits, each key once in a mapping); every problem
    is a SpecError naming the file."""
    return load_file(path)


def _entries(document: Any, source: str) -> list[Any]:
    """The `accelerators` list of a catalog document; a SpecError when the shape is wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("accelerators"), list):
        raise SpecError(
            source,
            [
                FieldProblem(
                    "accelerators",
                    "must be a list of types",
                    "a top-level `accelerators:` list of mappings",
                )
            ],
        )
    extra = sorted(str(key) for key in document if key != "accelerators")
    if extra:
        raise SpecError(
            source, [FieldProblem(key, "unknown top-level key", "accelerators") for key in extra]
        )
    return document["accelerators"]


def validate_entry(raw: Any, where: str) -> tuple[_AcceleratorSpec | None, list[FieldProblem]]:
    """Validate one entry; problems carry paths under `where` (e.g. `accelerators.3`)."""
    if not isinstance(raw, dict):
        message = f"expected a mapping, got {show_value(raw)}"
        keys = ", ".join(sorted(_AcceleratorSpec.model_fields))
        return None, [FieldProblem(where, message, keys)]
    try:
        spec = _AcceleratorSpec.model_validate(raw)
    except ValidationError as exc:
        return None, describe_errors(exc, _AcceleratorSpec, where)
    return spec, [_under(where, problem) for problem in spec_problems(spec)]


def _under(prefix: str, problem: FieldProblem) -> FieldProblem:
    return FieldProblem(f"{prefix}.{problem.path}", problem.message, problem.allowed)


def merge_entry(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`: mappings in MERGED_KEYS merge, aliases add, the rest replace."""
    merged = dict(base)
    for key, value in override.items():
        old = base.get(key)
        if key in MERGED_KEYS and isinstance(value, dict) and isinstance(old, dict):
            merged[key] = {**old, **value}
        elif key == "aliases" and isinstance(value, list) and isinstance(old, list):
            merged[key] = [*old, *(alias for alias in value if alias not in old)]
        else:
            merged[key] = value
    return merged


def _override_problems(entry: dict[str, Any], where: str) -> list[FieldProblem]:
    """An override that changes a figure must cite its own source for the new value."""
    own = entry.get("sources")
    own = own if isinstance(own, dict) else {}
    figures = [f for f in (*ALWAYS_SOURCED, *SOURCED_WHEN_SET) if f in entry]
    missing = [f for f in figures if not str(own.get(f) or "").strip()]
    if not missing:
        return []
    return [
        FieldProblem(
            f"{where}.sources",
            f"overrides {', '.join(missing)} without a source",
            "a `sources` entry for each overridden figure",
        )
    ]


class _CatalogBuilder:
    """Applies catalog files in order, keeping each type's raw entry for later overrides."""

    def __init__(self) -> None:
        self.catalog = Catalog()
        self._raw: dict[str, dict[str, Any]] = {}

    def apply(self, document: Any, source: str, *, overrides: bool) -> list[AcceleratorType]:
        """Validate every entry of `document`, then add them all; nothing is added on error."""
        problems: list[FieldProblem] = []
        built: list[tuple[int, dict[str, Any], AcceleratorType]] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(_entries(document, source)):
            where = f"accelerators.{index}"
            raw, found = self._resolve(entry, where) if overrides else (entry, [])
            spec, entry_problems = validate_entry(raw, where)
            problems += found + entry_problems
            if spec is None:
                continue
            key = normalise_name(spec.name)
            if key in seen:
                problems.append(
                    FieldProblem(
                        f"{where}.name",
                        f"repeats accelerators.{seen[key]}",
                        "each type once per file",
                    )
                )
            seen[key] = index
            built.append((index, raw, spec.build()))
        if problems:
            raise SpecError(source, problems)
        for index, raw, accel in built:
            self._add(index, raw, accel, source, replace=overrides)
        return [accel for _, _, accel in built]

    def _resolve(self, entry: Any, where: str) -> tuple[Any, list[FieldProblem]]:
        """The entry merged over the type it names, if any, and its override problems."""
        name = entry.get("name") if isinstance(entry, dict) else None
        base = self.catalog.find(name) if isinstance(name, str) else None
        if base is None:
            return entry, []
        merged = merge_entry(self._raw[base.name], entry)
        merged["name"] = base.name
        return merged, _override_problems(entry, where)

    def _add(
        self, index: int, raw: dict[str, Any], accel: AcceleratorType, source: str, replace: bool
    ) -> None:
        try:
            self.catalog.add(accel, replace=replace)
        except ValueError as exc:
            raise SpecError(source, [FieldProblem(f"accelerators.{index}", str(exc))]) from None
        self._raw[accel.name] = raw


def parse_catalog_document(document: Any, source: str) -> list[AcceleratorType]:
    """Validate one standalone catalog document (`{"accelerators": [...]}`) and build its types."""
    return _CatalogBuilder().apply(document, source, overrides=False)


def operator_paths(extra_paths: list[Path] | None = None) -> list[Path]:
    """The operator's catalog files, in load order: `SUAN_CATALOG` entries, then `extra_paths`."""
    env_paths = os.environ.get("SUAN_CATALOG", "")
    return [Path(p) for p in env_paths.split(os.pathsep) if p] + list(extra_paths or [])


def load_catalog(extra_paths: list[Path] | None = None, *, builtin: bool = True) -> Catalog:
    """The built-in catalog plus the operator's files; later files override earlier names.

    Raises SpecError naming the file and the field path (e.g. `accelerators.3.sources`) of
    every problem found in the first file that has any.
    """
    builder = _CatalogBuilder()
    if builtin:
        builder.apply(read_yaml(BUILTIN_PATH), str(BUILTIN_PATH), overrides=False)
    for path in operator_paths(extra_paths):
        builder.apply(read_yaml(path), str(path), overrides=True)
    return builder.catalog


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog for this process (built-in + SUAN_CATALOG), loaded once."""
    return load_catalog()
