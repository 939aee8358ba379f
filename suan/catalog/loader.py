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
named by `SUAN_CATALOG` (paths separated by `:`) or passed as `extra_paths`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suan.catalog.model import AcceleratorType, AllocationRule, Catalog
from suan.errors import FieldProblem, SpecError

BUILTIN_PATH = Path(__file__).with_name("accelerators.yaml")


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    counts: list[int] = Field(default_factory=list)
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
    link_domains: list[int] = Field(default_factory=list)
    link: str = "PCIe"
    link_bandwidth_gbs: float = Field(default=32.0, gt=0)
    supernode_devices: int = Field(default=0, ge=0)
    allocation: _RuleSpec = Field(default_factory=_RuleSpec)
    visible_devices_env: str = Field(min_length=1)
    collective_backend: str = Field(min_length=1)
    torch_device: str = "cuda"
    torch_plugin: str = "torch"
    relative_speed: float = Field(default=1.0, gt=0)
    notes: str = ""
    sources: dict[str, str] = Field(default_factory=dict)

    def build(self) -> AcceleratorType:
        domains = tuple(self.link_domains) or (self.devices_per_node,)
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
            link_domains=domains,
            link=self.link,
            link_bandwidth_gbs=self.link_bandwidth_gbs,
            allocation=rule,
            visible_devices_env=self.visible_devices_env,
            collective_backend=self.collective_backend,
            torch_device=self.torch_device,
            torch_plugin=self.torch_plugin,
            aliases=tuple(self.aliases),
            supernode_devices=self.supernode_devices,
            relative_speed=self.relative_speed,
            notes=self.notes,
            sources=dict(self.sources),
        )


def pydantic_problems(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """Turn a pydantic ValidationError into FieldProblems with dotted paths."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        problems.append(FieldProblem(path, item["msg"]))
    return problems


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, turning syntax errors into a SpecError naming the line."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(str(path), [FieldProblem("", "file not found")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise SpecError(str(path), [FieldProblem(where, f"invalid YAML: {exc}")]) from None


def parse_catalog_document(document: Any, source: str) -> list[AcceleratorType]:
    """Validate one catalog document (`{"accelerators": [...]}`) and build its types."""
    if not isinstance(document, dict) or not isinstance(document.get("accelerators"), list):
        raise SpecError(source, [FieldProblem("accelerators", "must be a list of types")])
    types, problems = [], []
    for index, entry in enumerate(document["accelerators"]):
        try:
            types.append(_AcceleratorSpec.model_validate(entry).build())
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, f"accelerators.{index}"))
    if problems:
        raise SpecError(source, problems)
    return types


def load_catalog(extra_paths: list[Path] | None = None, *, builtin: bool = True) -> Catalog:
    """The built-in catalog plus the operator's files; later files override earlier names."""
    catalog = Catalog()
    paths: list[Path] = [BUILTIN_PATH] if builtin else []
    env_paths = os.environ.get("SUAN_CATALOG", "")
    paths += [Path(p) for p in env_paths.split(":") if p]
    paths += list(extra_paths or [])
    for path in paths:
        for accel in parse_catalog_document(read_yaml(path), str(path)):
            try:
                catalog.add(accel, replace=path != BUILTIN_PATH)
            except ValueError as exc:
                raise SpecError(str(path), [FieldProblem(accel.name, str(exc))]) from None
    return catalog


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog for this process (built-in + SUAN_CATALOG), loaded once."""
    return load_catalog()
