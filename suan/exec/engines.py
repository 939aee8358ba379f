"""Which engine runs the ranks, and its settings: one registry for the server and the CLI.

    executor, simulated = open_executor("slurm", home, {"conf": "/etc/slurm/slurm.conf",
                                                        "partition": "suan"})

Each engine's settings are the section of the server config file named after it (docs/
engines.md); they are checked here, and a mistake names the field. The Ray and Kubernetes
executors import their SDK lazily: it is an optional extra (`suan[ray]`, `suan[kubernetes]`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suan.catalog import Catalog, default_catalog
from suan.devices.settings import HealthSettings, watch_for_node
from suan.errors import FieldProblem, SpecError
from suan.exec import EngineError, Executor
from suan.problems import describe_errors

ENGINES = ("local", "slurm", "ray", "kubernetes")
EngineName = Literal["local", "slurm", "ray", "kubernetes"]
EXTRAS = {"ray": "ray", "kubernetes": "kubernetes"}
"""The Python package each engine's SDK comes in, by engine."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LocalSection(_Section):
    """`local:` this machine; `devices` as `--devices` (8xH100, none; default: detected);
    `sandbox` and `cgroups` (auto, on, off) the isolation layers of suan.exec.isolation;
    `health` the reading of the devices' health (suan.devices.settings)."""

    devices: str | None = None
    sandbox: Literal["auto", "on", "off"] = "auto"
    cgroups: Literal["auto", "on", "off"] = "auto"
    health: HealthSettings = Field(default_factory=HealthSettings)


class SlurmSection(_Section):
    """`slurm:` see suan.exec.slurm.SlurmSettings for each field."""

    conf: str | None = None
    partition: str | None = None
    default_type: str | None = Field(default=None, alias="defaultType")
    gres_name: str = Field(default="gpu", alias="gresName")
    topology: dict[Literal["zone", "block", "rack", "supernode"], str] | None = None
    simulated: bool = False
    python: str | None = None
    command_timeout_s: float = Field(default=30.0, gt=0, alias="commandTimeoutSeconds")


class KubernetesSection(_Section):
    """`kubernetes:` see suan.exec.kubernetes.KubernetesSettings for each field."""

    host: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "default"
    scheduler_name: str = Field(default="suan", alias="schedulerName")
    default_type: str | None = Field(default=None, alias="defaultType")
    topology: dict[Literal["zone", "block", "rack", "supernode"], list[str]] | None = None
    tolerated_taints: list[str] = Field(default_factory=list, alias="toleratedTaints")
    default_image: str = Field(default="", alias="defaultImage")
    simulated: bool = False
    grace_s: int = Field(default=30, ge=0, alias="graceSeconds")
    devices_env: dict[str, str] | None = Field(default=None, alias="devicesEnv")


def _checked(model: type[_Section], section: Mapping[str, Any], engine: str) -> Any:
    try:
        return model.model_validate(dict(section))
    except ValidationError as exc:
        raise SpecError("server config", describe_errors(exc, model, engine)) from None


def open_executor(
    engine: str,
    home: Path,
    section: Mapping[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> tuple[Executor, bool]:
    """The executor for `engine` with its settings section, and whether devices are simulated."""
    catalog = catalog or default_catalog()
    section = section or {}
    if engine == "local":
        from suan.exec.isolation import Isolation, IsolationError
        from suan.exec.local import LocalExecutor
        from suan.exec.local_node import local_node

        settings = _checked(LocalSection, section, engine)
        node, simulated = local_node(settings.devices, catalog)
        try:
            isolation = Isolation.detect(home, settings.sandbox, settings.cgroups)
        except IsolationError as exc:
            raise EngineError(f"local engine: {exc}") from None
        watch = watch_for_node(node, settings.health, catalog, simulated)
        executor = LocalExecutor(
            home, catalog=catalog, node=node, isolation=isolation, health=watch
        )
        return executor, simulated
    if engine == "slurm":
        return _slurm(home, _checked(SlurmSection, section, engine), catalog)
    if engine in EXTRAS:
        _require(engine)
    if engine == "kubernetes":
        return _kubernetes(home, _checked(KubernetesSection, section, engine), catalog)
    if engine == "ray":
        from suan.exec.ray import from_settings

        return from_settings(home, section, catalog)
    raise SpecError(
        "server config", [FieldProblem("engine", f"unknown engine {engine!r}", ", ".join(ENGINES))]
    )


def _slurm(home: Path, section: SlurmSection, catalog: Catalog) -> tuple[Executor, bool]:
    from suan.exec.slurm import SlurmExecutor, SlurmSettings

    if section.default_type is not None and catalog.find(section.default_type) is None:
        raise SpecError(
            "server config",
            [
                FieldProblem(
                    "slurm.defaultType",
                    f"{section.default_type!r} is not in the accelerator catalog",
                    "a catalog name or alias (suan catalog)",
                )
            ],
        )
    settings = SlurmSettings(
        conf=section.conf,
        partition=section.partition,
        default_type=section.default_type,
        gres_name=section.gres_name,
        topology_prefixes=section.topology,
        simulated=section.simulated,
        command_timeout_s=section.command_timeout_s,
        **({"python": section.python} if section.python else {}),
    )
    return SlurmExecutor(home, settings, catalog), section.simulated


def _require(engine: str) -> None:
    try:
        importlib.import_module(EXTRAS[engine])
    except ImportError as exc:
        problem = FieldProblem("engine", f"{engine} needs `pip install 'suan[{engine}]'` ({exc})")
        raise SpecError("server config", [problem]) from None


def _kubernetes(home: Path, section: KubernetesSection, catalog: Catalog) -> tuple[Executor, bool]:
    from suan.exec.kubernetes import KubernetesExecutor, KubernetesSettings

    values: dict[str, Any] = {
        "host": section.host,
        "kubeconfig": section.kubeconfig,
        "context": section.context,
        "namespace": section.namespace,
        "scheduler_name": section.scheduler_name,
        "default_type": section.default_type,
        "tolerated_taints": tuple(section.tolerated_taints),
        "default_image": section.default_image,
        "simulated": section.simulated,
        "grace_s": section.grace_s,
    }
    if section.devices_env is not None:
        values["devices_env"] = dict(section.devices_env)
    if section.topology is not None:
        values["topology_labels"] = {tier: tuple(keys) for tier, keys in section.topology.items()}
    return KubernetesExecutor(home, KubernetesSettings(**values), catalog), section.simulated
