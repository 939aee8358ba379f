"""Job and Queue spec files (YAML, Kubernetes style) -> the scheduler's `Job` and `QueueSpec`.

The format is documented field by field in docs/job-spec.md; examples live in examples/jobs/.

A file holds Job and Queue documents as a multi-document YAML stream (`---`), as the `items` of
one `kind: List` document, or as one plain YAML list. Every problem of a file is collected and
raised together as one `SpecError`; each `FieldProblem` names:

- `path`: where, as a dotted path. In a file, it starts with `documents[k]`, the k-th job or
  queue of the file counted from 0 in file order (empty YAML documents are not counted); then
  the keys inside the document as written (`spec.replicaGroups.0.accelerators.count`), list
  items as their index. YAML syntax errors have the path `line N`. `parse_job`/`parse_queue`
  report paths inside the one document they are given (`spec.priority`).
- `message`: what was wrong, quoting the value that was given.
- `allowed`: what would have been accepted (keys, values, ranges, units), where that helps.

Text is read by the loader every spec file kind shares (suan.specfile) and bounded before it
is parsed on (docs/job-spec.md, Limits): at most MAX_SPEC_BYTES, nesting at most
MAX_YAML_DEPTH, aliases expanding to at most MAX_YAML_SIZE, each key once in a mapping (a
repeat is a problem at `documents[k]...`); and no key or string of a document may hold NUL or
a lone surrogate.

Public functions: `load_documents(path)`, `load_documents_text(text, source)`,
`read_stream(text, source)`, `parse_documents(documents, source)`, `flatten_documents`,
`parse_job`, `parse_queue`, `parse_job_document`, `job_to_document`, `queue_to_document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from suan.catalog import Catalog, default_catalog
from suan.errors import UNPRINTABLE, FieldProblem, SpecError
from suan.jobs._spec_models import (
    API_VERSION,
    NAME_ALLOWED,
    PRIORITY_CLASSES,
    RESTART_POLICIES,
    JobDocument,
    QueueDocument,
)
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.queue import QueueSpec
from suan.jobs.units import format_cpu, format_duration, format_memory
from suan.problems import describe_errors, join_path, show_value
from suan.specfile import (
    MAX_SPEC_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_SIZE,
    Key,
    load_stream,
    read_text,
)

__all__ = [
    "API_VERSION",
    "MAX_SPEC_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_SIZE",
    "NAME_ALLOWED",
    "PRIORITY_CLASSES",
    "RESTART_POLICIES",
    "JobDocument",
    "QueueDocument",
    "flatten_documents",
    "job_to_document",
    "load_documents",
    "load_documents_text",
    "parse_documents",
    "parse_job",
    "parse_job_document",
    "parse_queue",
    "queue_to_document",
    "read_stream",
]

KINDS_ALLOWED = "Job, Queue (or List, holding them, as the only document of a file)"
_LIST_KEYS = ("apiVersion", "kind", "items", "metadata")
M = TypeVar("M", bound=BaseModel)


# --- one document ---------------------------------------------------------------------------


def _validate(
    model: type[M], document: Any, catalog: Catalog | None, prefix: str
) -> tuple[M | None, list[FieldProblem]]:
    """(the validated model, []) or (None, its problems, paths starting with `prefix`).

    Text holding NUL or a surrogate, or a value JSON cannot store, anywhere in the document,
    is a problem at its path."""
    context = {"catalog": catalog if catalog is not None else default_catalog()}
    text_problems = _text_problems(document, prefix)
    try:
        parsed = model.model_validate(document, context=context)
    except ValidationError as exc:
        return None, text_problems + _outside(describe_errors(exc, model, prefix), text_problems)
    return (None, text_problems) if text_problems else (parsed, [])


def parse_job_document(
    document: Any, source: str = "<job>", *, catalog: Catalog | None = None
) -> JobDocument:
    """The validated Job document, with what the scheduler does not see (labels, `model`).

    Raises SpecError naming `source` with every problem of the document.
    """
    parsed, problems = _validate(JobDocument, document, catalog, "")
    if parsed is None:
        raise SpecError(source, problems)
    return parsed


def parse_job(
    document: Any,
    source: str = "<job>",
    submit_time: float = 0.0,
    *,
    catalog: Catalog | None = None,
) -> Job:
    """The scheduler's Job for one `kind: Job` document (a dict as YAML loads it).

    Accelerator types become canonical catalog names (of `catalog`, default: the process
    catalog). Raises SpecError naming `source` with every problem of the document.
    """
    return parse_job_document(document, source, catalog=catalog).to_job(submit_time)


def parse_queue(
    document: Any, source: str = "<queue>", *, catalog: Catalog | None = None
) -> QueueSpec:
    """The QueueSpec for one `kind: Queue` document; resources keyed by canonical names.

    Raises SpecError naming `source` with every problem of the document. The queue's parent is
    not looked up here (see `parse_documents` for the checks across a file).
    """
    parsed, problems = _validate(QueueDocument, document, catalog, "")
    if parsed is None:
        raise SpecError(source, problems)
    return parsed.to_queue()


# --- files ----------------------------------------------------------------------------------


def _locate(stream: list[Any], document: int, keys: tuple[Key, ...]) -> str:
    """The problem path of `keys` inside the `document`-th YAML document of `stream`:
    `documents[k]` as `parse_documents` counts them (after a List or a plain list is
    unpacked, empty documents not counted), then the keys inside it."""
    present = [index for index, found in enumerate(stream) if found is not None]
    only = stream[present[0]] if len(present) == 1 else None
    if isinstance(only, list) and keys and isinstance(keys[0], int):
        return join_path(f"documents[{keys[0]}]", *keys[1:])
    if isinstance(only, dict) and only.get("kind") == "List":
        if len(keys) >= 2 and keys[0] == "items" and isinstance(keys[1], int):
            return join_path(f"documents[{keys[1]}]", *keys[2:])
        return join_path(*keys)
    position = present.index(document) if document in present else document
    return join_path(f"documents[{position}]", *keys)


def read_stream(text: str, source: str) -> list[Any]:
    """The YAML documents of `text`, read by the shared loader (suan.specfile: limits, keys
    unique in every mapping); a problem is a SpecError whose path is `line N`, or for a
    repeated key its `documents[k]` path. `parse_documents` takes what it returns."""
    return load_stream(text, source, locate=_locate)


def load_documents(
    path: str | Path, *, submit_time: float = 0.0, catalog: Catalog | None = None
) -> tuple[list[Job], list[QueueSpec]]:
    """The jobs and queues of a spec file, in file order.

    Raises SpecError naming the file with every problem found in it.
    """
    text = read_text(path)
    return load_documents_text(text, str(path), submit_time=submit_time, catalog=catalog)


def load_documents_text(
    text: str, source: str = "<text>", *, submit_time: float = 0.0, catalog: Catalog | None = None
) -> tuple[list[Job], list[QueueSpec]]:
    """`load_documents` for YAML text already in hand (a request body, stdin).

    Text over MAX_SPEC_BYTES (UTF-8) is refused before it is parsed."""
    stream = read_stream(text, source)
    return parse_documents(stream, source, submit_time=submit_time, catalog=catalog)


def parse_documents(
    stream: list[Any],
    source: str = "<documents>",
    *,
    submit_time: float = 0.0,
    catalog: Catalog | None = None,
) -> tuple[list[Job], list[QueueSpec]]:
    """Jobs and queues from loaded YAML documents (a stream, one List, or one plain list).

    Beyond each document's own checks: job names are unique among the jobs, queue names among
    the queues, and every queue's parent is a queue of the same file, without cycles. Raises
    one SpecError with every problem.
    """
    documents, problems = _flatten(stream)
    jobs: list[tuple[int, Job]] = []
    queues: list[tuple[int, QueueSpec]] = []
    for index, document in enumerate(documents):
        prefix = f"documents[{index}]"
        model, kind_problems = _document_model(document, prefix)
        problems += kind_problems
        if model is None:
            continue
        parsed, found = _validate(model, document, catalog, prefix)
        problems += found
        if isinstance(parsed, JobDocument):
            jobs.append((index, parsed.to_job(submit_time)))
        elif isinstance(parsed, QueueDocument):
            queues.append((index, parsed.to_queue()))
    problems += _duplicate_names(documents, "Job") + _duplicate_names(documents, "Queue")
    problems += _queue_tree_problems(queues)
    if problems:
        raise SpecError(source, problems)
    return [job for _, job in jobs], [queue for _, queue in queues]


def flatten_documents(stream: list[Any]) -> list[Any]:
    """The job and queue documents of a YAML stream, as `parse_documents` counts them
    (`documents[k]`): its non-empty documents, or the entries of its one List or list."""
    return _flatten(stream)[0]


def _flatten(stream: list[Any]) -> tuple[list[Any], list[FieldProblem]]:
    """The job/queue documents of a stream: its non-empty documents, or a list's entries."""
    documents = [document for document in stream if document is not None]
    if len(documents) != 1:
        return documents, []
    only = documents[0]
    if isinstance(only, list):
        return only, []
    if not isinstance(only, dict) or only.get("kind") != "List":
        return documents, []
    problems = [
        FieldProblem(str(key), f"unknown field {key!r}", ", ".join(_LIST_KEYS))
        for key in only
        if key not in _LIST_KEYS
    ]
    if only.get("apiVersion", "v1") not in ("v1", API_VERSION):
        message = f"{show_value(only['apiVersion'])} is not allowed"
        problems.append(FieldProblem("apiVersion", message, f"v1, {API_VERSION}"))
    items = only.get("items", [])
    if not isinstance(items, list):
        problems.append(FieldProblem("items", f"expected a list, got {show_value(items)}"))
        items = []
    return items, problems


TEXT_ALLOWED = (
    "text without NUL characters or unpaired UTF-16 surrogates (no process argument, "
    "environment variable, file name or database field can hold them)"
)


JSON_ALLOWED = (
    "a string, a number, true or false, null, a list or a mapping with string keys "
    '(quote dates and other text: "2024-05-01")'
)
_JSON_SCALARS = (str, int, float, bool, type(None))


def _text_problems(document: Any, prefix: str) -> list[FieldProblem]:
    """A problem at every key and string of `document` holding NUL or a surrogate, and at
    every value or key JSON cannot hold as it is (a YAML date, binary, set or ordered map, a
    key that is not a string): a stored document parses to what was checked at submission.

    Iterative, and each list or mapping is visited once even where aliases repeat it."""
    problems = []
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [(prefix, document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and UNPRINTABLE.search(value):
            problems.append(FieldProblem(path, _bad_text(value), TEXT_ALLOWED))
        elif not isinstance(value, (*_JSON_SCALARS, dict, list)):
            message = f"{value!r} ({type(value).__name__}) is not a value a spec holds"
            problems.append(FieldProblem(path, message, JSON_ALLOWED))
        if not isinstance(value, dict | list) or id(value) in seen:
            continue
        seen.add(id(value))
        items = list(value.items() if isinstance(value, dict) else enumerate(value))
        for key, item in reversed(items):
            child = join_path(path, key)
            if isinstance(value, dict) and not isinstance(key, str):
                message = f"the key {key!r} is not a string"
                problems.append(FieldProblem(child, message, JSON_ALLOWED))
                continue
            if isinstance(key, str) and UNPRINTABLE.search(key):
                problems.append(FieldProblem(child, "the key " + _bad_text(key), TEXT_ALLOWED))
            stack.append((child, item))
    return problems


def _bad_text(text: str) -> str:
    found = UNPRINTABLE.search(text)
    char = found.group() if found else ""
    what = "a NUL character" if char == "\x00" else f"an unpaired surrogate ({char!r})"
    return f"{show_value(text)} contains {what}"


def _outside(found: list[FieldProblem], text_problems: list[FieldProblem]) -> list[FieldProblem]:
    """The problems of `found` not at or below a path of `text_problems` (said once)."""
    paths = [problem.path for problem in text_problems]
    return [
        problem
        for problem in found
        if not any(problem.path == path or problem.path.startswith(path + ".") for path in paths)
    ]


def _document_model(document: Any, prefix: str) -> tuple[type[BaseModel] | None, list]:
    """The model for a document's `kind`, or None with the problem."""
    if not isinstance(document, dict):
        message = f"expected a mapping (a Job or Queue document), got {show_value(document)}"
        return None, [FieldProblem(prefix, message, KINDS_ALLOWED)]
    kind = document.get("kind")
    model = (
        {"Job": JobDocument, "Queue": QueueDocument}.get(kind) if isinstance(kind, str) else None
    )
    if model is not None:
        return model, []
    message = "required field is missing" if "kind" not in document else f"{show_value(kind)}"
    if "kind" in document:
        message += " is not a kind of document Suan reads here"
    return None, [FieldProblem(join_path(prefix, "kind"), message, KINDS_ALLOWED)]


def _duplicate_names(documents: list[Any], kind: str) -> list[FieldProblem]:
    """A name given twice among the documents of `kind` (checked even if they are invalid)."""
    what = kind.lower()
    first: dict[str, int] = {}
    problems = []
    for index, document in enumerate(documents):
        name = _raw_name(document) if _raw_kind(document) == kind else None
        if name is None:
            continue
        if name in first:
            problems.append(
                FieldProblem(
                    f"documents[{index}].metadata.name",
                    f"{what} name {name!r} is already used by documents[{first[name]}]",
                    f"a name unique among the {what}s of the file",
                )
            )
        first.setdefault(name, index)
    return problems


def _raw_kind(document: Any) -> Any:
    return document.get("kind") if isinstance(document, dict) else None


def _raw_name(document: Any) -> str | None:
    metadata = document.get("metadata") if isinstance(document, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _queue_tree_problems(queues: list[tuple[int, QueueSpec]]) -> list[FieldProblem]:
    """Every parent is a queue of the file, and following parents never comes back."""
    by_name = {queue.name: queue for _, queue in queues}
    names = ", ".join(by_name) or "none"
    problems = []
    for index, queue in queues:
        path = f"documents[{index}].spec.parent"
        if queue.parent is not None and queue.parent not in by_name:
            message = f"parent queue {queue.parent!r} is not defined in this file"
            problems.append(FieldProblem(path, message, f"a queue of this file: {names}"))
            continue
        chain, current = [queue.name], queue.parent
        while current is not None and current in by_name and current not in chain:
            chain.append(current)
            current = by_name[current].parent
        if current is not None and current == queue.name:
            message = "queue tree has a cycle: " + " -> ".join([*chain, current])
            problems.append(FieldProblem(path, message, "a tree: each queue below its parent"))
    return problems


# --- back to documents ----------------------------------------------------------------------


def _priority_text(priority: int) -> int | str:
    names = {value: name for name, value in PRIORITY_CLASSES.items()}
    return names.get(priority, priority)


def _group_document(group: ReplicaGroup) -> dict[str, Any]:
    document: dict[str, Any] = {"name": group.name, "replicas": group.replicas}
    if group.accelerators:
        request: dict[str, Any] = {"count": group.accelerators}
        if group.accelerator_types:
            types = list(group.accelerator_types)
            request["type"] = types[0] if len(types) == 1 else types
        if group.accelerator_milli != 1000:
            request["share"] = group.accelerator_milli / 1000
        document["accelerators"] = request
    if group.cpu_milli:
        document["cpu"] = format_cpu(group.cpu_milli)
    if group.memory_mib:
        document["memory"] = format_memory(group.memory_mib)
    if group.pids:
        document["pids"] = group.pids
    if group.min_replicas is not None:
        document["elastic"] = {"minReplicas": group.min_replicas}
    return document


def job_to_document(job: Job) -> dict[str, Any]:
    """A `kind: Job` document for `job` (for display and export), in the long form.

    `parse_job(job_to_document(job), submit_time=job.submit_time)` equals `job` for every Job
    that `parse_job` can produce; simulator-only fields (`duration_s`, `attained_service_s`)
    and `submit_time` are not part of the document.
    """
    spec: dict[str, Any] = {"queue": job.queue}
    if job.user:
        spec["user"] = job.user
    if job.series:
        spec["series"] = job.series
    spec["priority"] = _priority_text(job.priority)
    spec["preemptible"] = job.preemptible
    spec["replicaGroups"] = [_group_document(group) for group in job.groups]
    if job.command:
        spec["command"] = list(job.command)
    if job.env:
        spec["env"] = dict(job.env)
    if job.runtime_estimate_s is not None:
        spec["runtimeEstimate"] = format_duration(job.runtime_estimate_s)
    if job.checkpoint_interval_s is not None:
        spec["checkpoint"] = {"interval": format_duration(job.checkpoint_interval_s)}
    spec["restartPolicy"] = job.restart_policy
    spec["maxRestarts"] = job.max_restarts
    topology: dict[str, Any] = {"replicaInDomain": job.topology.replica_in_domain}
    if job.topology.within is not None:
        topology["within"] = job.topology.within
    topology["placement"] = job.topology.placement
    spec["topology"] = topology
    if job.model is not None:
        spec["model"] = job.model
    if job.type_speeds:
        spec["typeSpeeds"] = dict(job.type_speeds)
    if job.image:
        spec["image"] = job.image
    if job.processes != "per-replica":
        spec["processes"] = job.processes
    if job.no_progress_timeout_s is not None:
        spec["health"] = {"noProgressTimeout": format_duration(job.no_progress_timeout_s)}
    return {"apiVersion": API_VERSION, "kind": "Job", "metadata": {"name": job.name}, "spec": spec}


def _amounts(amounts: Mapping[str, float]) -> dict[str, float | int]:
    """Amounts for display: whole numbers as ints (64.0 -> 64)."""
    return {key: int(v) if float(v).is_integer() else v for key, v in amounts.items()}


def queue_to_document(queue: QueueSpec) -> dict[str, Any]:
    """A `kind: Queue` document for `queue`; `parse_queue` reads it back to an equal QueueSpec."""
    spec: dict[str, Any] = {}
    if queue.parent is not None:
        spec["parent"] = queue.parent
    if queue.guaranteed:
        spec["guaranteed"] = _amounts(queue.guaranteed)
    if queue.borrow_limit is not None:
        spec["borrowLimit"] = _amounts(queue.borrow_limit)
    if queue.lend_limit is not None:
        spec["lendLimit"] = _amounts(queue.lend_limit)
    spec["weight"] = queue.weight
    if queue.admins:
        spec["admins"] = list(queue.admins)
    if queue.submitters is not None:
        spec["submitters"] = list(queue.submitters)
    if queue.viewers:
        spec["viewers"] = list(queue.viewers)
    document = {"apiVersion": API_VERSION, "kind": "Queue", "metadata": {"name": queue.name}}
    return {**document, "spec": spec}
