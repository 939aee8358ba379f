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

Text is bounded before it is parsed on (docs/job-spec.md, Limits): at most MAX_SPEC_BYTES,
nesting at most MAX_YAML_DEPTH, aliases expanding to at most MAX_YAML_SIZE; and no key or
string of a document may hold NUL or a lone surrogate.

Public functions: `load_documents(path)`, `load_documents_text(text, source)`,
`parse_documents(documents, source)`, `parse_job`, `parse_queue`, `parse_job_document`,
`job_to_document`, `queue_to_document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from suan.catalog import Catalog, default_catalog
from suan.errors import UNPRINTABLE, FieldProblem, SpecError
from suan.jobs._problems import describe_errors, join_path, show_value
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

__all__ = [
    "API_VERSION",
    "NAME_ALLOWED",
    "PRIORITY_CLASSES",
    "RESTART_POLICIES",
    "JobDocument",
    "QueueDocument",
    "job_to_document",
    "load_documents",
    "load_documents_text",
    "parse_documents",
    "parse_job",
    "parse_job_document",
    "parse_queue",
    "queue_to_document",
]

KINDS_ALLOWED = "Job, Queue (or List, holding them, as the only document of a file)"
_LIST_KEYS = ("apiVersion", "kind", "items", "metadata")
M = TypeVar("M", bound=BaseModel)


# --- one document ---------------------------------------------------------------------------


def _validate(
    model: type[M], document: Any, catalog: Catalog | None, prefix: str
) -> tuple[M | None, list[FieldProblem]]:
    """(the validated model, []) or (None, its problems, paths starting with `prefix`).

    Text holding NUL or a surrogate, anywhere in the document, is a problem at its path."""
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


MAX_SPEC_BYTES = 1_000_000
"""A spec file's size limit (UTF-8 bytes): a thousand large jobs fit in it; the API body
limit is the same number of characters."""
MAX_YAML_DEPTH = 64
"""Mappings and lists nested deeper than this are refused (a Job document needs fewer than
10 levels); the limit also keeps every reader of the document far from Python's recursion
limit."""
MAX_YAML_SIZE = 4 * MAX_SPEC_BYTES
"""The size of a file's documents with every alias expanded, counted as one per node plus the
characters of each scalar: aliases may repeat a part of the file, but not blow it up to
gigabytes ("billion laughs")."""


class _LimitError(yaml.YAMLError):
    """A file over one of the limits above, at `mark`, with what is allowed."""

    def __init__(self, message: str, allowed: str, mark: yaml.Mark):
        super().__init__(message)
        self.message, self.allowed, self.mark = message, allowed, mark


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last),
    nesting deeper than MAX_YAML_DEPTH and documents that expand beyond MAX_YAML_SIZE.

    Depth and size are counted while composing, before anything recurses further: an alias
    costs the size and the height of the node it names."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._peak = 0
        self._size = 0
        self._costs: dict[str, tuple[int, int]] = {}

    def compose_document(self) -> Any:
        self._costs = {}
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            size, height = self._costs.get(event.anchor, (1, 1))
            self._charge(size, self._depth + height, event.start_mark)
            return super().compose_node(parent, index)
        value = event.value if isinstance(event, yaml.ScalarEvent) else ""
        start_size, start_peak = self._size, self._peak
        self._depth += 1
        self._peak = self._depth
        self._charge(1 + len(value), self._depth, event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            height = self._peak - self._depth + 1
            self._depth -= 1
            self._peak = max(start_peak, self._peak)
        if event.anchor is not None:
            self._costs[event.anchor] = (self._size - start_size, height)
        return node

    def _charge(self, size: int, depth: int, mark: yaml.Mark) -> None:
        """Count `size` more and a node reaching `depth`; refuse either over its limit."""
        self._size += size
        self._peak = max(self._peak, depth)
        if depth > MAX_YAML_DEPTH:
            raise _LimitError(
                f"mappings and lists nested more than {MAX_YAML_DEPTH} levels deep",
                f"at most {MAX_YAML_DEPTH} levels of nesting (aliases count as what they name)",
                mark,
            )
        if self._size > MAX_YAML_SIZE:
            raise _LimitError(
                "the documents are too large once their aliases are expanded",
                f"at most {MAX_YAML_SIZE:,} nodes and scalar characters in all, aliases "
                "counted as what they name",
                mark,
            )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def read_stream(text: str, source: str) -> list[Any]:
    """The YAML documents of `text` (keys unique in every mapping); a syntax error is a
    SpecError at path `line N`. `parse_documents` takes what it returns."""
    return _read_stream(text, source)


def _read_stream(text: str, source: str) -> list[Any]:
    """The YAML documents of `text`; a syntax error is a SpecError at path `line N`, text over
    MAX_SPEC_BYTES (UTF-8) a SpecError before it is parsed."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        message = f"the file has {size:,} bytes, more than the limit"
        raise SpecError(source, [FieldProblem("", message, f"at most {MAX_SPEC_BYTES:,} bytes")])
    try:
        return list(yaml.load_all(text, Loader=_UniqueKeyLoader))
    except _LimitError as exc:
        where = f"line {exc.mark.line + 1}"
        message = f"{exc.message} (column {exc.mark.column + 1})"
        raise SpecError(source, [FieldProblem(where, message, exc.allowed)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        column = f" (column {mark.column + 1})" if mark else ""
        raise SpecError(source, [FieldProblem(where, f"invalid YAML: {problem}{column}")]) from None


def load_documents(
    path: str | Path, *, submit_time: float = 0.0, catalog: Catalog | None = None
) -> tuple[list[Job], list[QueueSpec]]:
    """The jobs and queues of a spec file, in file order.

    Raises SpecError naming the file with every problem found in it.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            str(path), [FieldProblem("", f"cannot read file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError as exc:
        message = f"byte {exc.start} is not UTF-8 text"
        raise SpecError(str(path), [FieldProblem("", message, "a UTF-8 text file")]) from None
    return load_documents_text(text, str(path), submit_time=submit_time, catalog=catalog)


def load_documents_text(
    text: str, source: str = "<text>", *, submit_time: float = 0.0, catalog: Catalog | None = None
) -> tuple[list[Job], list[QueueSpec]]:
    """`load_documents` for YAML text already in hand (a request body, stdin).

    Text over MAX_SPEC_BYTES (UTF-8) is refused before it is parsed."""
    stream = _read_stream(text, source)
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


def _text_problems(document: Any, prefix: str) -> list[FieldProblem]:
    """A problem at every key and string of `document` holding NUL or a surrogate.

    Iterative, and each list or mapping is visited once even where aliases repeat it."""
    problems = []
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [(prefix, document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and UNPRINTABLE.search(value):
            problems.append(FieldProblem(path, _bad_text(value), TEXT_ALLOWED))
        if not isinstance(value, dict | list) or id(value) in seen:
            continue
        seen.add(id(value))
        items = list(value.items() if isinstance(value, dict) else enumerate(value))
        for key, item in reversed(items):
            child = join_path(path, key)
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
