"""The server config file: which engine, its settings, the policy, timings.

    engine: slurm                      # local | slurm | ray | kubernetes
    policy: default
    slurm:                             # the engine's own section (docs/engines.md)
      conf: /etc/slurm/slurm.conf
      partition: suan
    storage:
      probe: true                      # check at start that every node sees SUAN_HOME
      timeoutSeconds: 60
      checkpointRoots: [/shared/ckpt]  # users may name checkpoint dirs under <root>/<user>/
      checkpointWriteGBs: 1.0          # write bandwidth per node, GB/s (checkpoint cost estimate)
    identity:
      runAs: submitter                 # server (default) | submitter: each job as its user's
      accounts: {alice: alice}         # Suan user -> OS account (default: the same name)
      createAccounts: false            # make a missing account (suan-<user>) when root
    limits:                            # each rank's, where its spec names none
      pids: 4096                       # processes and threads at once
      memory: 0                        # MiB or "8Gi"; 0: no limit
      logBytes: 1Gi                    # per rank and attempt; the rest is dropped
    health:
      noProgressTimeout: 30m           # restart a gang whose rank stopped reporting progress
                                       # this long, where the job's spec names no time (off
                                       # when unset)
    metrics:
      tokenFile: /etc/suan/metrics-token   # /metrics's scrape token (or token: ...); default:
                                           # <home>/metrics-token (docs/metrics.md)

`suan server --config FILE` reads it; `--engine` and the other flags override its values.
A mistake names the field, what was wrong and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from suan.control.config import RankLimits
from suan.control.metrics_token import MetricsSection
from suan.errors import FieldProblem, SpecError
from suan.exec.engines import EngineName
from suan.jobs._spec_models import Duration, MemoryMiB
from suan.jobs.units import parse_memory_mib
from suan.problems import describe_errors, show_value
from suan.specfile import load_file


class StorageSection(BaseModel):
    """`storage:` the start-up check that every node sees the server's home."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    probe: bool = True
    timeout_s: float = Field(default=60.0, gt=0, le=3600, alias="timeoutSeconds")
    checkpoint_roots: list[str] = Field(default_factory=list, alias="checkpointRoots")
    checkpoint_write_gbs: float = Field(default=1.0, gt=0, le=1e6, alias="checkpointWriteGBs")


class IdentitySection(BaseModel):
    """`identity:` which OS account each job's ranks run as (suan.control.identity)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    run_as: Literal["server", "submitter"] = Field(default="server", alias="runAs")
    accounts: dict[str, str] = Field(default_factory=dict)
    create_accounts: bool = Field(default=False, alias="createAccounts")


class LimitsSection(BaseModel):
    """`limits:` each rank's limits where its spec names none (suan.control.config.RankLimits)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    pids: int = Field(default=4096, ge=0, le=4_194_304)
    memory: MemoryMiB = 0
    log_bytes: int = Field(default=1 << 30, ge=0, alias="logBytes")

    @field_validator("log_bytes", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> Any:
        return parse_memory_mib(value) << 20 if isinstance(value, str) else value

    def rank_limits(self) -> RankLimits:
        return RankLimits(pids=self.pids, memory_mib=self.memory, log_bytes=self.log_bytes)


class HealthSection(BaseModel):
    """`health:` the no-progress timeout of jobs whose spec names none (suan.control.hangs)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    no_progress_timeout: Duration | None = Field(default=None, alias="noProgressTimeout")


class ServerFile(BaseModel):
    """The whole file; engine sections stay raw here and are checked by the engine."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    engine: EngineName = "local"
    policy: str = "default"
    local: dict[str, Any] = Field(default_factory=dict)
    slurm: dict[str, Any] = Field(default_factory=dict)
    ray: dict[str, Any] = Field(default_factory=dict)
    kubernetes: dict[str, Any] = Field(default_factory=dict)
    storage: StorageSection = Field(default_factory=StorageSection)
    identity: IdentitySection = Field(default_factory=IdentitySection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    health: HealthSection = Field(default_factory=HealthSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    inventory_s: float = Field(default=5.0, gt=0, le=3600, alias="inventorySeconds")

    def engine_section(self, engine: str | None = None) -> dict[str, Any]:
        return dict(getattr(self, engine or self.engine))


def _keys() -> list[str]:
    return sorted(info.alias or name for name, info in ServerFile.model_fields.items())


def read_server_file(path: Path) -> ServerFile:
    """Parse and check a server config file (see the module docstring), read with the loader
    every spec file shares (suan.specfile) and its problems shaped as in every spec file."""
    source = str(path)
    document = load_file(path)
    document = {} if document is None else document
    if not isinstance(document, dict):
        message = f"expected a mapping of settings, got {show_value(document)}"
        raise SpecError(source, [FieldProblem("", message, ", ".join(_keys()))])
    try:
        return ServerFile.model_validate(document)
    except ValidationError as exc:
        raise SpecError(source, describe_errors(exc, ServerFile)) from None
