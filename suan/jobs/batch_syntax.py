"""The two batch notations a job spec borrows from Slurm: `dependencies` and `array`.

    dependencies: "afterok:prep-1a2b3c:prep-4d5e6f,afterany:clean"   (every one must hold)
    array: "0-99:2%8"        (indices 0, 2, ..., 98; at most 8 members run at once)

Parsing is pure: a ValueError says what is wrong in words a user can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

KINDS: dict[str, str] = {
    "after": "start",
    "afterok": "succeed",
    "afternotok": "fail",
    "afterany": "end",
}
"""Each dependency kind and what its targets must do: start, succeed, fail, or end (either)."""
DEPENDENCY_ALLOWED = (
    "KIND:JOB[:JOB...][,KIND:JOB...] with KIND one of after, afterok, afternotok, afterany "
    "and JOB a job id, an array id or a job name; every dependency must hold"
)
ARRAY_ALLOWED = (
    "indices and ranges separated by commas (0-99, 0-99:2 for a step, 1,5,7), "
    "then %N to run at most N members at once"
)
MAX_ARRAY_MEMBERS = 10_000
"""Members of one array at most: each is a job row the reconciler reads every pass, and ten
thousand is more than any cluster runs at once (Slurm's default MaxArraySize is 1001)."""
MAX_ARRAY_INDEX = 99_999
"""Indices at most five digits: a member's id (`<array id>-<index>`) then never has the shape
of another job's id (`<name>-<6 hex digits>`)."""
_TARGET = re.compile(r"[a-z0-9][-a-z0-9]*")
_RANGE = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")


@dataclass(frozen=True)
class Dependency:
    """Wait for `target` (a job id, an array id or a job name) to do what `kind` asks."""

    kind: str
    target: str

    @property
    def verb(self) -> str:
        return KINDS[self.kind]


def parse_dependencies(text: str) -> tuple[Dependency, ...]:
    """The dependencies written in Slurm's notation: `afterok:A:B,afterany:C`; an item
    without a kind continues the previous one (`afterok:A,B` is A and B to succeed)."""
    if "?" in text:
        raise ValueError("'?' (any one of) is not supported: every dependency must hold")
    found: list[Dependency] = []
    kind = ""
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError(f"{text!r} has an empty item")
        head, _, rest = item.partition(":")
        if rest or head in KINDS:
            if head not in KINDS:
                raise ValueError(f"unknown dependency kind {head!r}")
            kind, targets = head, rest.split(":")
        elif not kind:
            raise ValueError(f"{item!r} has no kind (write afterok:{item})")
        else:
            targets = [item]
        for target in targets:
            if not _TARGET.fullmatch(target):
                raise ValueError(f"{target!r} is not a job id or name")
            found.append(Dependency(kind, target))
    if not found:
        raise ValueError(f"{text!r} names no job")
    return tuple(dict.fromkeys(found))


def format_dependencies(dependencies: tuple[Dependency, ...]) -> str:
    """The notation `parse_dependencies` reads, one item per dependency."""
    return ",".join(f"{d.kind}:{d.target}" for d in dependencies)


@dataclass(frozen=True)
class ArraySpec:
    """An array's member indices (ascending, each once) and how many may run at once."""

    indices: tuple[int, ...]
    limit: int | None = None


def parse_array(text: str) -> ArraySpec:
    """`0-99:2%8` and the like (see ARRAY_ALLOWED)."""
    body, percent, limit_text = text.strip().partition("%")
    limit = None
    if percent:
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise ValueError(f"the throttle {limit_text!r} after '%' is not a whole number >= 1")
        limit = int(limit_text)
    indices: set[int] = set()
    for item in (part.strip() for part in body.split(",")):
        match = _RANGE.fullmatch(item)
        if match is None:
            raise ValueError(f"{item!r} is not an index, a range A-B or a range with a step A-B:S")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        step = int(match.group(3)) if match.group(3) else 1
        if last < first or step < 1:
            raise ValueError(f"{item!r} is empty (the end is before the start, or the step is 0)")
        if last > MAX_ARRAY_INDEX:
            raise ValueError(f"index {last} is larger than {MAX_ARRAY_INDEX:,}")
        if (last - first) // step + 1 + len(indices) > MAX_ARRAY_MEMBERS:
            raise ValueError(f"more than {MAX_ARRAY_MEMBERS:,} members")
        indices.update(range(first, last + 1, step))
    return ArraySpec(tuple(sorted(indices)), limit)


def with_dependency(text: str, dependency: str) -> str:
    """The spec file `text` with `spec.dependencies` of every Job set to `dependency`
    (the command line wins over the file, as with sbatch); ValueError for a notation that
    is not one."""
    try:
        parse_dependencies(dependency)
    except ValueError as exc:
        raise ValueError(f"--dependency: {exc}; expected {DEPENDENCY_ALLOWED}") from None
    documents = list(yaml.safe_load_all(text))
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "Job":
            spec = document.setdefault("spec", {})
            if isinstance(spec, dict):
                spec["dependencies"] = dependency
    return yaml.safe_dump_all(documents, sort_keys=False)
