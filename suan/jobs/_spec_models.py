"""The schema of Job and Queue documents (docs/job-spec.md), as strict pydantic models.

Keys are camelCase, unknown keys are errors, and types are not coerced (`"8"` is not a count).
Validators that need the accelerator catalog read it from the validation context
(`{"catalog": Catalog}`), falling back to `default_catalog()`. Every validator reports through
`spec_error` / `field_error`, so a problem names its path, what was wrong and what is allowed.
Conversion to the scheduler's model (`Job`, `QueueSpec`) is `JobDocument.to_job` and
`QueueDocument.to_queue`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from suan.catalog import Catalog, default_catalog
from suan.errors import FieldProblem
from suan.jobs.batch_syntax import (
    ARRAY_ALLOWED,
    DEPENDENCY_ALLOWED,
    parse_array,
    parse_dependencies,
)
from suan.jobs.model import SCOPES, Job, ReplicaGroup, TopologyConstraint
from suan.jobs.queue import ANY_ACCELERATOR, EVERYONE, QueueSpec
from suan.jobs.units import (
    DURATION_ALLOWED,
    UnitError,
    format_duration,
    parse_cpu_milli,
    parse_duration,
    parse_memory_mib,
)
from suan.problems import field_error, show_value, spec_error

API_VERSION = "suan.ai/v1"
PRIORITY_CLASSES: dict[str, int] = {"low": -100, "normal": 0, "high": 100, "critical": 1000}
PRIORITY_LIMIT = 1_000_000
RESTART_POLICIES: tuple[str, ...] = ("never", "on-failure", "always")
NAME_MAX = 63
MAX_RESTARTS = 1000
"""`maxRestarts` at most: each restart relaunches the whole gang, and a job that failed a
thousand times will not succeed on the next try (a larger number is a typo, or `1e30` meant
as "forever", which `restartPolicy: always` with this bound already gives for years)."""
MAX_DURATION_S = 365 * 86400
"""Durations (`runtimeEstimate`, checkpoint intervals) at most one year: no run is planned
beyond it, and larger numbers (10^20 hours) only break the scheduler's arithmetic."""
MAX_REPLICAS = 100_000
"""Replicas of one group at most: more than any cluster has nodes (each replica needs one)."""
MAX_ARG_BYTES = 131_072 - 1
"""One argument, or one `NAME=value` of the environment, at most this many UTF-8 bytes:
Linux refuses longer strings in execve (MAX_ARG_STRLEN, 131072, counts the closing NUL)."""
ARGS_TOTAL_BYTES = min(1 << 20, os.sysconf("SC_ARG_MAX") // 2)
"""The command and environment of a job together at most this many bytes (each string with
its closing NUL plus an 8-byte pointer, as execve counts them): half of the server's ARG_MAX
and at most 1 MiB, leaving the other half for what the engine adds (SUAN_*, the launcher)."""
COMMAND_ALLOWED = "a list of strings starting with the program, e.g. [python, train.py]"

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME_ALLOWED = (
    f"lowercase letters, digits and '-', starting and ending with a letter or digit, "
    f"at most {NAME_MAX} characters (e.g. 'llama-70b-pretrain')"
)
PRIORITY_ALLOWED = (
    f"an integer from -{PRIORITY_LIMIT} to {PRIORITY_LIMIT}, or a class: "
    + ", ".join(f"{name} ({value})" for name, value in PRIORITY_CLASSES.items())
)


def catalog_of(info: ValidationInfo) -> Catalog:
    """The catalog passed in the validation context, or the process default."""
    catalog = (info.context or {}).get("catalog")
    return catalog if catalog is not None else default_catalog()


# --- scalar field types ---------------------------------------------------------------------


def _name_faults(value: str) -> list[str]:
    """Why `value` is not a DNS-1123 label, in words ([] when it is one)."""
    if not value:
        return ["it is empty"]
    faults = []
    if len(value) > NAME_MAX:
        faults.append(f"it has {len(value)} characters")
    if any(ch.isupper() for ch in value):
        faults.append("it has uppercase letters")
    bad = sorted({ch for ch in value if not (ch == "-" or ch.isdigit() or "a" <= ch <= "z")})
    bad = [ch for ch in bad if not ch.isupper()]
    if bad:
        faults.append("it contains " + " ".join(repr(ch) for ch in bad))
    if value[0] == "-" or value[-1] == "-":
        faults.append("it starts or ends with '-'")
    return faults


def _check_name(value: str) -> str:
    faults = _name_faults(value)
    if faults:
        raise field_error(f"{value!r} is not a valid name: {'; '.join(faults)}", NAME_ALLOWED)
    return value


def _check_env_name(value: str) -> str:
    if _ENV_NAME.fullmatch(value):
        return value
    raise field_error(
        f"{value!r} is not a valid environment variable name",
        "letters, digits and '_', not starting with a digit",
    )


def _scalar_text(value: Any) -> Any:
    """Numbers become their text (`8` -> "8"); booleans and null are refused, not guessed."""
    if isinstance(value, bool) or value is None:
        raise field_error(
            f"expected a string, got {show_value(value)}", 'a string (quote it: "true", "")'
        )
    return str(value) if isinstance(value, int | float) else value


def _string_bytes(value: str) -> int:
    """UTF-8 bytes of `value` (surrogates, refused elsewhere, counted as 3)."""
    return len(value.encode("utf-8", "surrogatepass"))


def _check_arg(value: str) -> str:
    size = _string_bytes(value)
    if size > MAX_ARG_BYTES:
        raise field_error(
            f"{show_value(value)} has {size:,} bytes, more than one argument may have",
            f"at most {MAX_ARG_BYTES:,} bytes (Linux's MAX_ARG_STRLEN)",
        )
    return value


def _bounded_duration(value: Any) -> float:
    """`parse_duration`, refusing more than MAX_DURATION_S."""
    seconds = parse_duration(value)
    if seconds > MAX_DURATION_S:
        raise UnitError(
            f"duration {show_value(value)} is more than a year", f"{DURATION_ALLOWED}; at most 365d"
        )
    return seconds


def _units(parse: Callable[[Any], Any]) -> BeforeValidator:
    """A before-validator that turns `parse`'s UnitError into a spec problem."""

    def validate(value: Any) -> Any:
        try:
            return parse(value)
        except UnitError as exc:
            raise field_error(str(exc), exc.allowed) from None

    return BeforeValidator(validate)


def _priority(value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in PRIORITY_CLASSES:
        return PRIORITY_CLASSES[value.strip().lower()]
    if isinstance(value, str):
        raise field_error(f"unknown priority class {value!r}", PRIORITY_ALLOWED)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > PRIORITY_LIMIT:
        raise field_error(f"{show_value(value)} is not a priority", PRIORITY_ALLOWED)
    return value


def _check_image(value: str) -> str:
    if value and not any(ch.isspace() for ch in value):
        return value
    raise field_error(
        f"{value!r} is not a container image reference",
        "an image reference without spaces, e.g. 'registry.example.com/team/trainer:1.4'",
    )


def _check_member(value: str) -> str:
    """A user name in a queue's `submitters` or `viewers`, or `*` for every user."""
    if value == EVERYONE or not _name_faults(value):
        return value
    raise field_error(
        f"{value!r} is not a user name",
        "a user name (lowercase letters, digits and '-', at most 63 characters), "
        "or '*' for every user",
    )


def _check_dependencies(value: str) -> str:
    try:
        parse_dependencies(value)
    except ValueError as exc:
        raise field_error(str(exc), DEPENDENCY_ALLOWED) from None
    return value


def _check_array(value: str) -> str:
    try:
        parse_array(value)
    except ValueError as exc:
        raise field_error(str(exc), ARRAY_ALLOWED) from None
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Dependencies = Annotated[str, AfterValidator(_check_dependencies)]
ArrayText = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_check_array)]
Member = Annotated[str, AfterValidator(_check_member)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
Image = Annotated[str, AfterValidator(_check_image)]
Text = Annotated[str, BeforeValidator(_scalar_text)]
Arg = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_check_arg)]
Duration = Annotated[float, _units(_bounded_duration), Field(gt=0)]
CpuMilli = Annotated[int, _units(parse_cpu_milli)]
MemoryMiB = Annotated[int, _units(parse_memory_mib)]
Priority = Annotated[int, BeforeValidator(_priority)]
Amount = Annotated[float, Field(ge=0)]
Speed = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    """Base of every spec model: camelCase keys, no unknown keys, no type coercion."""

    model_config = ConfigDict(
        extra="forbid", strict=True, alias_generator=to_camel, allow_inf_nan=False
    )


# --- accelerators ---------------------------------------------------------------------------


def _type_allowed(catalog: Catalog) -> str:
    names = ", ".join(sorted(catalog.names()))
    return f"any, or a catalog name or alias (case-insensitive): {names}"


def _did_you_mean(name: str, catalog: Catalog) -> str:
    """A "did you mean" hint naming the closest catalog name or alias, or an empty string."""
    keys = [key for accel in catalog for key in (accel.name, *accel.aliases)]
    close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown_type(name: str, catalog: Catalog) -> str:
    return f"unknown accelerator type {name!r}{_did_you_mean(name, catalog)}"


def _type_shape(value: Any) -> Any:
    """`type` must be null, one name, or a list of names; anything else is refused here."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list):
        message = f"expected an accelerator name or a list of names, got {show_value(value)}"
        raise field_error(message, "any, one name, or a list of names in preference order")
    problems = [
        FieldProblem(str(index), f"expected an accelerator name, got {show_value(name)}")
        for index, name in enumerate(value)
        if not isinstance(name, str)
    ]
    if problems:
        raise spec_error(problems)
    return value


def resolve_types(value: str | list[str] | None, catalog: Catalog) -> tuple[list[str], list]:
    """(canonical names, problems) for `type`: one name, a preference list, or any.

    Problem paths are "type" (one name) or "type.<index>" (a list), relative to the request.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "any"):
        return [], []
    single = isinstance(value, str)
    names: list[str] = []
    problems: list[FieldProblem] = []
    seen: dict[str, int] = {}
    for index, name in enumerate([value] if isinstance(value, str) else value):
        where = "type" if single else f"type.{index}"
        found = catalog.find(name)
        if found is None:
            allowed = _type_allowed(catalog)
            problems.append(FieldProblem(where, _unknown_type(name, catalog), allowed))
        elif found.name in seen:
            message = f"{name!r} is {found.name}, already listed as type.{seen[found.name]}"
            problems.append(FieldProblem(where, message, "each type once, in preference order"))
        else:
            seen[found.name] = index
            names.append(found.name)
    return names, problems


def count_problems(count: int, types: list[str], catalog: Catalog) -> list[FieldProblem]:
    """Problems (at "count") when a replica may not take `count` devices of these types."""
    problems = []
    for name in types:
        accel = catalog.get(name)
        size, rule = accel.devices_per_node, accel.allocation
        if rule.allows(count, size) or (count > size and accel.span_parts(count)):
            continue  # one node holds it, or it spans nodes of one supernode
        if count > size:
            message = f"{count} {name} devices per replica is more than one node has ({size}); "
            message += _span_refusal(accel.supernode_devices, count)
            allowed = f"{rule.describe(size)}; use more replicas for more devices"
        else:
            message = f"{count} {name} devices per replica is not an allowed allocation"
            allowed = rule.describe(size)
        problems.append(FieldProblem("count", message, allowed))
    if (
        not types
        and len(catalog)
        and not any(accel.allocation.allows(count, accel.devices_per_node)
                    or (count > accel.devices_per_node and accel.span_parts(count))
                    for accel in catalog)
    ):
        largest = max(accel.devices_per_node for accel in catalog)
        message = f"no accelerator type in the catalog allows {count} devices per replica"
        allowed = f"at most {largest} (the largest node), within each type's allocation rule"
        problems.append(FieldProblem("count", message, allowed))
    return problems


def _span_refusal(supernode: int, count: int) -> str:
    """Why a replica larger than a node may not span nodes of the type's supernode."""
    if not supernode:
        return "a replica runs on one node"
    if count > supernode:
        return f"a replica may span nodes only inside one {supernode}-device supernode"
    return ("a replica may span the nodes of one supernode only in equal parts the "
            "allocation rule allows on one node")


class AcceleratorRequest(_Strict):
    """Per replica: `count` devices of one of `types` (preference order; [] = any), or a share.

    After validation `types` holds canonical catalog names.
    """

    count: int = Field(default=1, ge=1)
    type_: Annotated[str | list[str] | None, BeforeValidator(_type_shape)] = Field(
        default=None, alias="type"
    )
    share: float = Field(default=1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> AcceleratorRequest:
        catalog = catalog_of(info)
        names, problems = resolve_types(self.type_, catalog)
        self.type_ = names
        problems += count_problems(self.count, names, catalog)
        if self.share < 1 and self.count != 1:
            problems.append(
                FieldProblem(
                    "share",
                    f"a fractional share ({self.share}) needs count 1, got count {self.count}",
                    "count 1 with 0 < share < 1, or share 1 (whole devices) with any count",
                )
            )
        if round(self.share * 1000) < 1:
            message = f"share {self.share} is below the smallest unit, 0.001"
            problems.append(FieldProblem("share", message, "0.001 to 1"))
        if problems:
            raise spec_error(problems)
        return self

    @property
    def types(self) -> list[str]:
        return self.type_ if isinstance(self.type_, list) else []

    @property
    def milli(self) -> int:
        return round(self.share * 1000)


# --- replica groups -------------------------------------------------------------------------


class Elastic(_Strict):
    """An elastic group runs with `minReplicas` up to its `replicas`; `maxReplicas` = replicas."""

    min_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    max_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)


class GroupFields(_Strict):
    """What each replica needs and how many replicas there are.

    Used for the entries of `replicaGroups` and, as a shorthand for a one-group job, directly
    in a job's `spec`. `command` and `env` given here apply to this group's replicas.
    """

    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    accelerators: AcceleratorRequest | None = None
    cpu: CpuMilli = 0
    memory: MemoryMiB = 0
    pids: int = Field(default=0, ge=0, le=4_194_304)
    elastic: Elastic | None = None
    command: list[Arg] | None = None
    env: dict[EnvName, Text] = Field(default_factory=dict)

    @field_validator("command")
    @classmethod
    def _runnable(cls, value: list[str] | None) -> list[str] | None:
        """A command, when given, names a program: not `[]`, not `[""]`."""
        if value is not None and not value:
            raise field_error("the command is empty: it names no program to run", COMMAND_ALLOWED)
        if value and not value[0].strip():
            message = f"{show_value(value[0])} names no program to run"
            raise spec_error([FieldProblem("0", message, COMMAND_ALLOWED)])
        return value

    @field_validator("env")
    @classmethod
    def _entries_fit(cls, value: dict[str, str]) -> dict[str, str]:
        """Each `NAME=value` fits in one execve string."""
        problems = [
            FieldProblem(
                name,
                f"{name}={show_value(text)} has {size:,} bytes, more than one variable may have",
                f"at most {MAX_ARG_BYTES:,} bytes for NAME=value (Linux's MAX_ARG_STRLEN)",
            )
            for name, text in value.items()
            if (size := _string_bytes(name) + 1 + _string_bytes(text)) > MAX_ARG_BYTES
        ]
        if problems:
            raise spec_error(problems)
        return value

    @model_validator(mode="after")
    def _check_elastic(self) -> GroupFields:
        if self.elastic is None:
            return self
        problems = []
        most = self.elastic.max_replicas
        if most is not None and "replicas" not in self.model_fields_set:
            self.__dict__["replicas"] = most  # not via setattr: `replicas` stays "not written"
        elif most is not None and most != self.replicas:
            problems.append(
                FieldProblem(
                    "elastic.maxReplicas",
                    f"maxReplicas ({most}) differs from replicas ({self.replicas})",
                    "the value of replicas (the group's largest size), or leave one out",
                )
            )
        if self.elastic.min_replicas > self.replicas:
            message = (
                f"minReplicas ({self.elastic.min_replicas}) exceeds replicas ({self.replicas})"
            )
            problems.append(FieldProblem("elastic.minReplicas", message, f"1 to {self.replicas}"))
        if problems:
            raise spec_error(problems)
        return self

    def to_group(self, name: str) -> ReplicaGroup:
        """The scheduler's ReplicaGroup named `name` (no accelerators block: 0 devices)."""
        request = self.accelerators
        return ReplicaGroup(
            name=name,
            replicas=self.replicas,
            accelerators=request.count if request else 0,
            accelerator_milli=request.milli if request else 1000,
            accelerator_types=tuple(request.types) if request else (),
            cpu_milli=self.cpu,
            memory_mib=self.memory,
            pids=self.pids,
            min_replicas=self.elastic.min_replicas if self.elastic else None,
        )


class ReplicaGroupSpec(GroupFields):
    """One entry of `spec.replicaGroups`."""

    name: Name = "worker"


# --- job ------------------------------------------------------------------------------------


class Checkpoint(_Strict):
    """How often the job saves its state (`interval` or `intervalSeconds`), where (`dir`), and
    how many seconds of training one save blocks (`cost`, for the advised interval)."""

    interval: Duration | None = None
    interval_seconds: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    dir: str | None = None
    cost: Duration | None = None

    @model_validator(mode="after")
    def _one_interval(self) -> Checkpoint:
        if self.interval is not None and self.interval_seconds is not None:
            raise spec_error(
                [FieldProblem("intervalSeconds", "interval is already set", "one of the two")]
            )
        return self

    @property
    def seconds(self) -> float | None:
        return self.interval if self.interval is not None else self.interval_seconds


class Health(_Strict):
    """How the control plane watches a running gang: `noProgressTimeout`, the time after which
    a gang with a rank that reported progress (`suan.progress`) and then reported none is
    stopped and restarted (a hang; it counts as a restart). None: the server's default."""

    no_progress_timeout: Duration | None = None


class Topology(_Strict):
    """Where the gang may sit; see `TopologyConstraint`."""

    replica_in_domain: bool = False
    within: str | None = None
    placement: Literal["pack", "spread"] = "pack"

    @field_validator("within")
    @classmethod
    def _scope(cls, value: str | None) -> str | None:
        if value is None or value in SCOPES:
            return value
        raise field_error(f"{value!r} is not a topology scope", ", ".join(SCOPES))


_SHORTHAND = ("replicas", "accelerators", "cpu", "memory", "pids", "elastic")


class JobSpec(GroupFields):
    """A job's `spec`: one group given inline (the shorthand) or a list in `replicaGroups`.

    Here `command` and `env` are job-wide: a group's own `command` replaces it, a group's own
    `env` adds to it. The scheduler's Job runs one command with one environment, so every group
    must end up with the same ones.
    """

    queue: Name = "default"
    user: str = ""
    series: Name | None = None
    priority: Priority = 0
    preemptible: bool = True
    replica_groups: list[ReplicaGroupSpec] | None = Field(default=None, min_length=1)
    runtime_estimate: Duration | None = None
    time_limit: Duration | None = None
    checkpoint: Checkpoint | None = None
    restart_policy: Literal["never", "on-failure", "always"] = "on-failure"
    max_restarts: int = Field(default=3, ge=0, le=MAX_RESTARTS)
    health: Health | None = None
    topology: Topology = Field(default_factory=Topology)
    model: str | None = None
    type_speeds: dict[str, Speed] | None = None
    image: Image | None = None
    processes: Literal["per-replica", "per-device"] = "per-replica"
    dependencies: Dependencies | None = None
    array: ArrayText | None = None

    @field_validator("type_speeds")
    @classmethod
    def _canonical_speeds(cls, value: dict[str, float] | None, info: ValidationInfo) -> Any:
        return None if value is None else canonical_speeds(value, catalog_of(info))

    @model_validator(mode="after")
    def _check_groups(self) -> JobSpec:
        if self.replica_groups is None:
            return self
        problems = [
            FieldProblem(
                to_camel(key),
                f"{to_camel(key)} cannot be combined with replicaGroups",
                "set it inside each replica group, or leave out replicaGroups for one group",
            )
            for key in _SHORTHAND
            if key in self.model_fields_set
        ]
        problems += self._duplicate_group_names() + self._differing_runtime()
        if problems:
            raise spec_error(problems)
        return self

    @model_validator(mode="after")
    def _check_exec_size(self) -> JobSpec:
        """The command and environment together fit in what execve takes (ARGS_TOTAL_BYTES)."""
        group = self.groups()[0]
        command, env = self.command_of(group), self.env_of(group)
        command_bytes = sum(_string_bytes(arg) + 9 for arg in command)
        env_bytes = sum(_string_bytes(name) + _string_bytes(value) + 10 for name, value in env)
        if command_bytes + env_bytes <= ARGS_TOTAL_BYTES:
            return self
        key = "command" if command_bytes >= env_bytes else "env"
        own = getattr(group, key) if self.replica_groups is not None else None
        where = f"replicaGroups.0.{key}" if own else key
        message = (
            f"the command ({command_bytes:,} bytes) and environment ({env_bytes:,} bytes) "
            "together are more than a process may be started with"
        )
        allowed = (
            f"at most {ARGS_TOTAL_BYTES:,} bytes together, each string counted with its closing "
            "NUL and an 8-byte pointer; pass large data in a file"
        )
        raise spec_error([FieldProblem(where, message, allowed)])

    def _duplicate_group_names(self) -> list[FieldProblem]:
        first: dict[str, int] = {}
        problems = []
        for index, group in enumerate(self.groups()):
            if group.name in first:
                where = f"replicaGroups.{first[group.name]}"
                message = f"group name {group.name!r} is already used by {where}"
                problems.append(
                    FieldProblem(f"replicaGroups.{index}.name", message, "a name unique in the job")
                )
            first.setdefault(group.name, index)
        return problems

    def _differing_runtime(self) -> list[FieldProblem]:
        problems = []
        groups = self.groups()
        for index, group in enumerate(groups[1:], start=1):
            for key, value, reference in (
                ("command", self.command_of(group), self.command_of(groups[0])),
                ("env", self.env_of(group), self.env_of(groups[0])),
            ):
                if value != reference:
                    problems.append(
                        FieldProblem(
                            f"replicaGroups.{index}.{key}",
                            f"differs from the {key} of replicaGroups.0 ({groups[0].name!r})",
                            f"the same {key} in every group (set spec.{key} once): "
                            "a job runs one command with one environment",
                        )
                    )
        return problems

    def groups(self) -> list[ReplicaGroupSpec]:
        """The replica groups; the shorthand form is one group named "worker"."""
        if self.replica_groups is not None:
            return self.replica_groups
        fields = {key: getattr(self, key) for key in GroupFields.model_fields}
        return [ReplicaGroupSpec.model_construct(name="worker", **fields)]

    def command_of(self, group: GroupFields) -> tuple[str, ...]:
        command = group.command if group.command is not None else self.command
        return tuple(command or ())

    def env_of(self, group: GroupFields) -> tuple[tuple[str, str], ...]:
        """The job-wide env with the group's own on top, sorted by name."""
        return tuple(sorted({**self.env, **group.env}.items()))


def canonical_speeds(speeds: dict[str, float], catalog: Catalog) -> dict[str, float]:
    """`typeSpeeds` keyed by canonical catalog names; a problem at each unknown or repeated
    type."""
    result: dict[str, float] = {}
    written: dict[str, str] = {}
    problems = []
    for key, speed in speeds.items():
        accel = catalog.find(key)
        if accel is None:
            message = f"unknown accelerator type {key!r}{_did_you_mean(key, catalog)}"
            allowed = "a catalog name or alias (case-insensitive): " + ", ".join(
                sorted(catalog.names()))
            problems.append(FieldProblem(key, message, allowed))
        elif accel.name in written:
            message = f"{key!r} and {written[accel.name]!r} both name {accel.name}"
            problems.append(FieldProblem(key, message, "each accelerator type once"))
        else:
            written[accel.name] = key
            result[accel.name] = speed
    if problems:
        raise spec_error(problems)
    return result


class Metadata(_Strict):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class JobDocument(_Strict):
    """A whole `kind: Job` document. `to_job` gives the scheduler's view."""

    api_version: Literal["suan.ai/v1"]
    kind: Literal["Job"]
    metadata: Metadata
    spec: JobSpec

    def to_job(self, submit_time: float = 0.0) -> Job:
        """The scheduler's Job. Labels, annotations and `checkpoint.dir` stay here."""
        spec = self.spec
        groups = spec.groups()
        checkpoint = spec.checkpoint.seconds if spec.checkpoint else None
        return Job(
            name=self.metadata.name,
            groups=tuple(group.to_group(group.name) for group in groups),
            queue=spec.queue,
            user=spec.user,
            priority=spec.priority,
            preemptible=spec.preemptible,
            submit_time=submit_time,
            runtime_estimate_s=spec.runtime_estimate,
            checkpoint_interval_s=checkpoint,
            topology=TopologyConstraint(
                replica_in_domain=spec.topology.replica_in_domain,
                within=spec.topology.within,
                placement=spec.topology.placement,
            ),
            command=spec.command_of(groups[0]),
            env=spec.env_of(groups[0]),
            restart_policy=spec.restart_policy,
            max_restarts=spec.max_restarts,
            model=spec.model,
            type_speeds=tuple(sorted((spec.type_speeds or {}).items(),
                                     key=lambda item: (-item[1], item[0]))),
            series=spec.series or "",
            image=spec.image or "",
            processes=spec.processes,
            no_progress_timeout_s=spec.health.no_progress_timeout if spec.health else None,
            time_limit_s=spec.time_limit,
        )


# --- queue ----------------------------------------------------------------------------------


def _resource_allowed(catalog: Catalog) -> str:
    names = ", ".join(sorted(catalog.names()))
    return f"{ANY_ACCELERATOR} (devices of any type), or an accelerator name or alias: {names}"


def canonical_resources(amounts: dict[str, float], catalog: Catalog) -> dict[str, float]:
    """`amounts` keyed by canonical catalog names (or `accelerators`); problems at the key."""
    result: dict[str, float] = {}
    written: dict[str, str] = {}
    problems = []
    for key, amount in amounts.items():
        accel = catalog.find(key)
        canonical = ANY_ACCELERATOR if key == ANY_ACCELERATOR else accel.name if accel else None
        if canonical is None:
            message = f"unknown resource {key!r}{_did_you_mean(key, catalog)}"
            problems.append(FieldProblem(key, message, _resource_allowed(catalog)))
        elif canonical in written:
            message = f"{key!r} and {written[canonical]!r} both name {canonical}"
            problems.append(FieldProblem(key, message, "each resource once"))
        else:
            written[canonical] = key
            result[canonical] = amount
    if problems:
        raise spec_error(problems)
    return result


class QueueBody(_Strict):
    """A queue's `spec`: place in the tree and quota per resource (see QueueSpec)."""

    parent: Name | None = None
    guaranteed: dict[str, Amount] = Field(default_factory=dict)
    borrow_limit: dict[str, Amount] | None = None
    lend_limit: dict[str, Amount] | None = None
    weight: float = Field(default=1.0, gt=0)
    admins: list[str] = Field(default_factory=list)
    submitters: list[Member] | None = None
    viewers: list[Member] = Field(default_factory=list)
    default_time_limit: Duration | None = None
    max_time_limit: Duration | None = None

    @model_validator(mode="after")
    def _default_within_max(self) -> QueueBody:
        default, most = self.default_time_limit, self.max_time_limit
        if default is not None and most is not None and default > most:
            raise spec_error([FieldProblem(
                "defaultTimeLimit",
                f"{format_duration(default)} is over the queue's maxTimeLimit of "
                f"{format_duration(most)}",
                f"a duration up to {format_duration(most)}",
            )])
        return self

    @field_validator("guaranteed", "borrow_limit", "lend_limit")
    @classmethod
    def _canonical(cls, value: dict[str, float] | None, info: ValidationInfo) -> Any:
        if value is None:
            return None
        resources = canonical_resources(value, catalog_of(info))
        if info.field_name == "lend_limit" and "guaranteed" in info.data:
            _check_lending(value, resources, info.data["guaranteed"])
        return resources


def guaranteed_total(guaranteed: dict[str, float]) -> float:
    """A queue's guarantee of `accelerators` (devices of any type): as written, or, when only
    typed amounts are written, their sum (suan.sched.quota counts it the same way)."""
    if ANY_ACCELERATOR in guaranteed:
        return guaranteed[ANY_ACCELERATOR]
    return sum(guaranteed.values())


def _check_lending(written: dict[str, float], lend: dict[str, float], guaranteed: dict) -> None:
    """A queue lends only what it is guaranteed: lendLimit <= guaranteed, per resource, the
    `accelerators` guarantee being `guaranteed_total`."""
    problems = []
    for key, (canonical, amount) in zip(written, lend.items(), strict=True):
        own = (
            guaranteed_total(guaranteed)
            if canonical == ANY_ACCELERATOR
            else guaranteed.get(canonical, 0)
        )
        if amount > own:
            message = f"lends {amount:g} of {canonical} but is guaranteed only {own:g}"
            problems.append(FieldProblem(key, message, f"0 to {own:g} (the queue's guarantee)"))
    if problems:
        raise spec_error(problems)


class QueueDocument(_Strict):
    """A whole `kind: Queue` document. `to_queue` gives the scheduler's QueueSpec."""

    api_version: Literal["suan.ai/v1"]
    kind: Literal["Queue"]
    metadata: Metadata
    spec: QueueBody = Field(default_factory=QueueBody)

    def to_queue(self) -> QueueSpec:
        spec = self.spec
        return QueueSpec(
            name=self.metadata.name,
            parent=spec.parent,
            guaranteed=dict(spec.guaranteed),
            borrow_limit=dict(spec.borrow_limit) if spec.borrow_limit is not None else None,
            lend_limit=dict(spec.lend_limit) if spec.lend_limit is not None else None,
            weight=spec.weight,
            admins=tuple(spec.admins),
            submitters=tuple(spec.submitters) if spec.submitters is not None else None,
            viewers=tuple(spec.viewers),
            default_time_limit_s=spec.default_time_limit,
            max_time_limit_s=spec.max_time_limit,
        )
