"""Scheduler state files: one scheduling cycle's inputs as a document, and back.

A `kind: SchedulerState` document holds what `decide(snapshot, pending, policy)` reads beyond
the cluster and the job specs: the clock (`now`), node health and unhealthy devices, the jobs
that run and where (node -> device ids per replica, start and last-checkpoint times), the submit
times and attained service that order the queue, and the service classes learned from finished
jobs. The control
plane writes one (`suan snapshot export`) holding exactly what its reconciler hands the
scheduler; `suan schedule --state FILE` replays the cycle offline. The format is documented in
docs/schedule-state.md.

    state = load_state("state.yaml", cluster=None, jobs=(), queues=())
    decisions = decide(state.snapshot, state.pending, state.policy or "default")
    document = state_document(snapshot, pending, policy="default")   # parse_state reads it back

Every mistake is one `SpecError` whose problems name the path in the document
(`running.0.replicas.1.devices`), what was wrong and what is allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suan.catalog import Catalog
from suan.cluster.model import Cluster, Node, NodeHealth
from suan.cluster.snapshot import Allocation, ReplicaPlacement, Snapshot
from suan.cluster.spec import dump_cluster, parse_cluster
from suan.errors import FieldProblem, SpecError
from suan.jobs._problems import describe_errors
from suan.jobs.model import Job
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec
from suan.jobs.spec import (
    job_to_document,
    parse_documents,
    parse_job,
    queue_to_document,
    read_stream,
)
from suan.sched.service import ServiceClasses

API_VERSION = "suan.ai/v1"
KIND = "SchedulerState"
NAME_MAX = 63
"""The longest `metadata.name` of a Job document (a job's own name may be longer: a control
plane's job id adds a suffix; the entry's `name` carries it)."""


# --- the document's schema ----------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
HealthName = Literal["ready", "degraded", "cordoned", "down"]


class _Replica(BaseModel):
    """One replica of a running job: where it sits."""

    model_config = _STRICT
    node: str = Field(min_length=1)
    devices: list[int]
    group: str | None = None
    share: float = Field(default=1.0, gt=0, le=1)


class _Running(BaseModel):
    """A job that holds devices: where and since when."""

    model_config = _STRICT
    job: str = Field(min_length=1)
    start_time: float = Field(alias="startTime", allow_inf_nan=False)
    last_checkpoint: float | None = Field(
        default=None, alias="lastCheckpoint", allow_inf_nan=False
    )
    replicas: list[_Replica] = Field(min_length=1)


class _NodeState(BaseModel):
    """What changed on a node since the cluster was described: health and bad devices."""

    model_config = _STRICT
    health: HealthName | None = None
    reason: str | None = None
    unhealthy_devices: list[int] | None = Field(default=None, alias="unhealthyDevices")


class _JobEntry(BaseModel):
    """A job under the name the scheduler knows it by (a control plane's job id)."""

    model_config = _STRICT
    name: str | None = Field(default=None, min_length=1)
    document: dict[str, Any]


class _SeriesTable(BaseModel):
    model_config = _STRICT
    queue: str
    series: str = Field(min_length=1)
    classes: list[int]


class _Service(BaseModel):
    """Learned service classes (`suan.sched.service.ServiceClasses`)."""

    model_config = _STRICT
    grid: list[float] | None = None
    fallback: list[int] | None = None
    per_queue: dict[str, list[int]] = Field(default_factory=dict, alias="perQueue")
    per_series: list[_SeriesTable] = Field(default_factory=list, alias="perSeries")


class _StateDocument(BaseModel):
    model_config = _STRICT
    api_version: Literal["suan.ai/v1"] = Field(alias="apiVersion")
    kind: Literal["SchedulerState"]
    now: float = Field(default=0.0, allow_inf_nan=False)
    policy: str | None = None
    cluster: dict[str, Any] | None = None
    nodes: dict[str, _NodeState] = Field(default_factory=dict)
    queues: list[Any] = Field(default_factory=list)
    jobs: list[Any] = Field(default_factory=list)
    submit_times: dict[str, float] = Field(default_factory=dict, alias="submitTimes")
    attained_service: dict[str, float] = Field(default_factory=dict, alias="attainedService")
    running: list[_Running] = Field(default_factory=list)
    service: _Service | None = None
    decisions: Any = None
    exported: dict[str, Any] | None = None


# --- the parsed state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerState:
    """One cycle's inputs: the snapshot, the pending jobs (in the order given) and the policy
    the state names (None: the caller's choice). `decisions` is what the writer of the state
    recorded as its outcome (`suan snapshot export`), None when it recorded none."""

    snapshot: Snapshot
    pending: tuple[Job, ...]
    policy: str | None = None
    decisions: Mapping[str, Any] | None = None


class _Problems:
    """Problems collected while a state document is read."""

    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, path: str, message: str, allowed: str = "") -> None:
        self.items.append(FieldProblem(path, message, allowed))

    def nested(self, prefix: str, error: SpecError) -> None:
        """The problems of a nested document, their paths under `prefix`."""
        for problem in error.problems:
            path = f"{prefix}.{problem.path}" if problem.path else prefix
            self.items.append(FieldProblem(path, problem.message, problem.allowed))


def load_state(
    path: str | Path,
    *,
    cluster: Cluster | None = None,
    jobs: Sequence[Job] = (),
    queues: Sequence[QueueSpec] = (),
    catalog: Catalog | None = None,
) -> SchedulerState:
    """Read a state file (JSON, any size; or YAML, within the spec files' size limit) and
    build its state (see `parse_state`). Raises SpecError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise SpecError(str(path), [FieldProblem("", f"cannot read file: {reason}")]) from None
    return parse_state(_read_document(text, str(path)), str(path), cluster=cluster, jobs=jobs,
                       queues=queues, catalog=catalog)


def _read_document(text: str, source: str) -> Any:
    """The one document of a state file: JSON when it starts with `{`, else YAML."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise SpecError(source, [FieldProblem("", f"invalid JSON: {exc}")]) from None
    documents = [document for document in read_stream(text, source) if document is not None]
    if len(documents) != 1:
        raise SpecError(source, [FieldProblem(
            "", f"expected one document, found {len(documents)}", f"one kind: {KIND} document")])
    return documents[0]


def parse_state(
    document: Any,
    source: str = "<state>",
    *,
    cluster: Cluster | None = None,
    jobs: Sequence[Job] = (),
    queues: Sequence[QueueSpec] = (),
    catalog: Catalog | None = None,
) -> SchedulerState:
    """The state of a `kind: SchedulerState` document (a dict as JSON or YAML loads it).

    `cluster`, when given, replaces the document's `cluster`; `jobs` and `queues` (a jobs file's)
    are added after the document's own. Every job that `running` does not name is pending, in
    the order given; `submitTimes` sets submit times by job name (0 otherwise). Without queues
    the state has the `default` queue. Raises SpecError naming `source` with every problem.
    """
    if not isinstance(document, dict):
        raise SpecError(source, [FieldProblem("", "a state file must be a mapping",
                                              f"apiVersion: {API_VERSION}, kind: {KIND}, ...")])
    try:
        parsed = _StateDocument.model_validate(document)
    except ValidationError as exc:
        raise SpecError(source, describe_errors(exc, _StateDocument)) from None
    problems = _Problems()
    the_cluster = _cluster(parsed, cluster, catalog, problems)
    the_queues = _queues(parsed, queues, catalog, source, problems)
    all_jobs = _jobs(parsed, jobs, catalog, problems)
    if problems.items:
        raise SpecError(source, problems.items)
    the_cluster = _with_node_states(the_cluster, parsed.nodes, problems)
    by_name = {job.name: job for job in all_jobs}
    running = tuple(_allocation(entry, index, by_name, the_cluster, problems)
                    for index, entry in enumerate(parsed.running))
    _check_shared_devices(parsed.running, problems)
    service = _service(parsed.service, problems) if parsed.service is not None else None
    if problems.items:
        raise SpecError(source, problems.items)
    held = {alloc.job.name for alloc in running}
    snapshot = Snapshot(the_cluster, running, the_queues or (DEFAULT_QUEUE,), parsed.now,
                        service=service)
    pending = tuple(job for job in all_jobs if job.name not in held)
    decisions = parsed.decisions if isinstance(parsed.decisions, dict) else None
    return SchedulerState(snapshot, pending, parsed.policy, decisions)


def _cluster(parsed: _StateDocument, given: Cluster | None, catalog: Catalog | None,
             problems: _Problems) -> Cluster:
    if given is not None:
        return given
    if parsed.cluster is None:
        problems.add("cluster", "required field is missing (or give --cluster)",
                     "a kind: Cluster document (docs/cluster-spec.md)")
        return Cluster([])
    try:
        return parse_cluster(parsed.cluster, "cluster", catalog=catalog)
    except SpecError as exc:
        problems.nested("cluster", exc)
        return Cluster([])


def _queues(parsed: _StateDocument, given: Sequence[QueueSpec], catalog: Catalog | None,
            source: str, problems: _Problems) -> tuple[QueueSpec, ...]:
    """The document's queues (checked as one spec file: unique names, parents defined), then
    `given`."""
    documents = list(parsed.queues) + [queue_to_document(queue) for queue in given]
    if not documents:
        return ()
    try:
        found_jobs, found = parse_documents(documents, source, catalog=catalog)
    except SpecError as exc:
        for problem in exc.problems:
            path = problem.path.replace("documents[", "queues.", 1).replace("]", "", 1)
            problems.add(path, problem.message, problem.allowed)
        return ()
    if found_jobs:
        problems.add("queues", "holds Job documents", "Queue documents only (jobs go in jobs)")
    return tuple(found)


def _jobs(parsed: _StateDocument, given: Sequence[Job], catalog: Catalog | None,
          problems: _Problems) -> list[Job]:
    """The document's jobs (Job documents, or entries `{name, document}`), then `given`; each
    with its submit time from `submitTimes`."""
    jobs: list[Job] = []
    for index, item in enumerate(parsed.jobs):
        job = _job(item, f"jobs.{index}", catalog, problems)
        if job is not None:
            jobs.append(job)
    jobs.extend(given)
    seen: set[str] = set()
    for job in jobs:
        if job.name in seen:
            problems.add("jobs", f"job name {job.name!r} is given twice",
                         "names unique among the state's and the jobs file's jobs")
        seen.add(job.name)
    for key, values in (("submitTimes", parsed.submit_times),
                        ("attainedService", parsed.attained_service)):
        for name, value in values.items():
            if name not in seen:
                problems.add(f"{key}.{name}", f"no job named {name!r}", "a job of the state")
            elif not math.isfinite(value) or value < 0:
                problems.add(f"{key}.{name}", f"{value!r} is out of range",
                             "a finite number >= 0 (seconds)")
    return [_with_times(job, parsed) for job in jobs]


def _with_times(job: Job, parsed: _StateDocument) -> Job:
    """`job` with its submit time and attained service from the document, where it gives them."""
    changes = {}
    if job.name in parsed.submit_times:
        changes["submit_time"] = parsed.submit_times[job.name]
    if job.name in parsed.attained_service:
        changes["attained_service_s"] = parsed.attained_service[job.name]
    return replace(job, **changes) if changes else job


def _job(item: Any, path: str, catalog: Catalog | None, problems: _Problems) -> Job | None:
    """One job of `jobs`: a Job document, or `{name, document}` naming it otherwise."""
    name = None
    if isinstance(item, dict) and "kind" not in item:
        try:
            entry = _JobEntry.model_validate(item)
        except ValidationError as exc:
            problems.items.extend(describe_errors(exc, _JobEntry, path))
            return None
        name, item, path = entry.name, entry.document, f"{path}.document"
    try:
        job = parse_job(item, path, catalog=catalog)
    except SpecError as exc:
        problems.nested(path, exc)
        return None
    return job if name is None else replace(job, name=name)


def _with_node_states(cluster: Cluster, states: Mapping[str, _NodeState],
                      problems: _Problems) -> Cluster:
    """The cluster with each listed node's health, reason and unhealthy devices replaced."""
    nodes = list(cluster.nodes)
    for name, state in states.items():
        path = f"nodes.{name}"
        if name not in cluster.index:
            problems.add(path, f"no node named {name!r} in the cluster", "a node of the cluster")
            continue
        node = nodes[cluster.index[name]]
        changes: dict[str, Any] = {}
        if state.health is not None:
            changes["health"] = NodeHealth(state.health)
        if state.reason is not None:
            changes["health_reason"] = state.reason
        if state.unhealthy_devices is not None:
            bad = state.unhealthy_devices
            if not _distinct_ids(bad, node.devices):
                problems.add(f"{path}.unhealthyDevices", f"invalid device ids {bad}",
                             _ids_allowed(node))
                continue
            changes["unhealthy_devices"] = frozenset(bad)
        nodes[cluster.index[name]] = replace(node, **changes)
    return Cluster(nodes, cluster.name)


def _distinct_ids(ids: Sequence[int], devices: int) -> bool:
    return len(set(ids)) == len(ids) and all(0 <= d < devices for d in ids)


def _ids_allowed(node: Node) -> str:
    if not node.devices:
        return f"none ({node.name} has no devices)"
    return f"distinct ids from 0 to {node.devices - 1} ({node.name} has {node.devices})"


def _allocation(entry: _Running, index: int, jobs: Mapping[str, Job], cluster: Cluster,
                problems: _Problems) -> Allocation:
    """A running entry as an Allocation (problems recorded; a placeholder when it is wrong)."""
    path = f"running.{index}"
    job = jobs.get(entry.job)
    if job is None:
        problems.add(f"{path}.job", f"no job named {entry.job!r}", "a job of the state")
        return Allocation(Job(entry.job, ()), ())
    groups = [group.name for group in job.groups]
    replicas = []
    for number, replica in enumerate(entry.replicas):
        where = f"{path}.replicas.{number}"
        group = groups.index(replica.group) if replica.group in groups else 0
        if replica.group is not None and replica.group not in groups:
            problems.add(f"{where}.group", f"job {job.name} has no group {replica.group!r}",
                         ", ".join(groups))
        if replica.node not in cluster.index:
            problems.add(f"{where}.node", f"no node named {replica.node!r} in the cluster",
                         "a node of the cluster")
        elif not replica.devices or not _distinct_ids(replica.devices,
                                                       cluster.node(replica.node).devices):
            problems.add(f"{where}.devices", f"invalid device ids {replica.devices}",
                         _ids_allowed(cluster.node(replica.node)))
        milli = round(replica.share * 1000)
        replicas.append(ReplicaPlacement(group, replica.node, tuple(replica.devices), milli))
    return Allocation(job, tuple(replicas), entry.start_time, entry.last_checkpoint)


def _check_shared_devices(entries: Sequence[_Running], problems: _Problems) -> None:
    """No device is held beyond its whole: shares of one device add up to at most 1, and two
    jobs never both hold it whole."""
    held: dict[tuple[str, int], int] = {}
    holders: dict[tuple[str, int], list[str]] = {}
    for entry in entries:
        for replica in entry.replicas:
            for device in replica.devices:
                key = (replica.node, device)
                held[key] = held.get(key, 0) + round(replica.share * 1000)
                holders.setdefault(key, []).append(entry.job)
    for (node, device), milli in held.items():
        if milli > 1000:
            names = ", ".join(dict.fromkeys(holders[(node, device)]))
            problems.add("running", f"device {device} of {node} is held by {names} beyond "
                         "its whole", "shares of one device that add up to at most 1")


def _service(service: _Service, problems: _Problems) -> ServiceClasses:
    """Service classes from the document (grid and fallback default to the built-in ones)."""
    default = ServiceClasses()
    grid = tuple(service.grid) if service.grid is not None else default.grid
    if any(not math.isfinite(x) for x in grid) or any(b <= a for a, b in pairwise(grid)):
        problems.add("service.grid", "not an increasing list of finite numbers",
                     "increasing attained device-seconds")
    cells = len(grid) + 1
    allowed = f"{cells} classes (one per grid cell), each >= 0"

    def table(values: Sequence[int], path: str) -> tuple[int, ...]:
        if len(values) != cells or any(value < 0 for value in values):
            problems.add(path, f"{len(values)} classes", allowed)
        return tuple(values)

    fallback = (table(service.fallback, "service.fallback") if service.fallback is not None
                else default.fallback)
    if len(fallback) != cells and service.fallback is None:
        problems.add("service.fallback", "required with a grid of another length", allowed)
    per_queue = {queue: table(values, f"service.perQueue.{queue}")
                 for queue, values in service.per_queue.items()}
    per_series = {(item.queue, item.series): table(item.classes, f"service.perSeries.{index}")
                  for index, item in enumerate(service.per_series)}
    return ServiceClasses(per_queue, grid, fallback, per_series)


# --- writing a state ----------------------------------------------------------------------------


def state_document(
    snapshot: Snapshot,
    pending: Sequence[Job],
    policy: str | None = None,
    *,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """A `kind: SchedulerState` document of `snapshot` and `pending` that `parse_state` reads
    back into an equal snapshot (running jobs, queues, service classes, node health and
    reasons) and the same pending jobs in the same order.

    The simulator's oracle (`duration_s`) is not written; job commands and environments are
    left out (the scheduler does not read them, and they may hold secrets)."""
    running_jobs = [alloc.job for alloc in snapshot.running]
    jobs = [*running_jobs, *(job for job in pending if job.name not in
                             {j.name for j in running_jobs})]
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "now": snapshot.now,
        "policy": policy,
        "cluster": dump_cluster(snapshot.cluster, catalog=catalog),
        "nodes": _node_states(snapshot.cluster),
        "queues": [queue_to_document(queue) for queue in snapshot.queues],
        "jobs": [_job_entry(job) for job in jobs],
        "submitTimes": {job.name: job.submit_time for job in jobs if job.submit_time},
        "attainedService": {job.name: job.attained_service_s for job in jobs
                            if job.attained_service_s},
        "running": [_running_entry(alloc) for alloc in snapshot.running],
        "service": None if snapshot.service is None else service_document(snapshot.service),
    }
    if policy is None:
        del document["policy"]
    return document


def _node_states(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """The health reasons of nodes that have one (the cluster document holds the rest)."""
    return {node.name: {"health": str(node.health), "reason": node.health_reason}
            for node in cluster if node.health_reason}


def _job_entry(job: Job) -> dict[str, Any]:
    document = job_to_document(job)
    document["metadata"]["name"] = _document_name(job.name)
    for key in ("command", "env"):
        document["spec"].pop(key, None)
    return {"name": job.name, "document": document}


def _document_name(name: str) -> str:
    """`name` cut to a valid `metadata.name` (the entry's `name` keeps the whole)."""
    return name[:NAME_MAX].rstrip("-") or "job"


def _running_entry(alloc: Allocation) -> dict[str, Any]:
    groups = alloc.job.groups
    replicas = []
    for replica in alloc.replicas:
        entry: dict[str, Any] = {"node": replica.node, "devices": list(replica.devices)}
        if 0 <= replica.group < len(groups):
            entry["group"] = groups[replica.group].name
        if replica.milli != 1000:
            entry["share"] = replica.milli / 1000
        replicas.append(entry)
    return {"job": alloc.job.name, "startTime": alloc.start_time,
            "lastCheckpoint": alloc.last_checkpoint_s, "replicas": replicas}


def service_document(service: ServiceClasses) -> dict[str, Any]:
    """The `service` section for learned classes (`_service` reads it back)."""
    return {
        "grid": list(service.grid),
        "fallback": list(service.fallback),
        "perQueue": {queue: list(table) for queue, table in sorted(service.per_queue.items())},
        "perSeries": [{"queue": queue, "series": series, "classes": list(table)}
                      for (queue, series), table in sorted(service.per_series.items())],
    }
