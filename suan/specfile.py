"""Reading spec files: one bounded YAML loader for every file Suan reads.

Job and queue files, cluster specs, accelerator catalogs, the server config and API
submissions all come through here, so they share the same limits and report YAML mistakes the
same way (docs/job-spec.md, Limits):

- text: at most MAX_SPEC_BYTES UTF-8 bytes, refused before it is parsed; a file that is not
  UTF-8 is refused at its first bad byte;
- nesting: mappings and lists at most MAX_YAML_DEPTH deep (aliases count as what they name);
- aliases: the documents, every alias expanded, at most MAX_YAML_SIZE nodes and characters;
- keys: each key at most once in a mapping (PyYAML would keep the last one silently).

Every mistake is a `SpecError` naming the source. A syntax error or a limit is at path
`line N`; a duplicate key is at the key's own dotted path, `spec.nodePools.0.count: duplicate
key 'count' (line 8)`, with every duplicate of the file reported together. A file kind whose
problem paths do not start at the YAML root (job files count `documents[k]`) passes a
`locate` function that turns a stream position into its path.

Public: `read_text(path)`, `load_stream(text, source, locate=...)`, `load_document(text,
source)`, `load_file(path)`, and the limits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from suan.errors import FieldProblem, SpecError

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
DUPLICATE_ALLOWED = "each key once in a mapping"
UTF8_ALLOWED = "a UTF-8 text file"

Key = str | int
"""One step of a path inside a YAML document: a mapping key or a list index."""


@dataclass(frozen=True)
class DuplicateKey:
    """A key written twice in one mapping: the `document`-th YAML document of the stream
    (empty ones counted), the `keys` from its root down to the repeated key, the key's line."""

    document: int
    keys: tuple[Key, ...]
    line: int


Locate = Callable[[list[Any], int, tuple[Key, ...]], str]
"""(the loaded stream, a document's position in it, keys inside it) -> a problem path."""


def dotted(keys: tuple[Key, ...]) -> str:
    """The dotted path of `keys`: ("spec", "nodePools", 0, "count") -> spec.nodePools.0.count."""
    return ".".join(str(key) for key in keys)


def locate_in_document(stream: list[Any], document: int, keys: tuple[Key, ...]) -> str:
    """Paths from the root of a file's one document (the file kinds other than job files)."""
    return dotted(keys)


class _LimitError(yaml.YAMLError):
    """A file over one of the limits above, at `mark`, with what is allowed."""

    def __init__(self, message: str, allowed: str, mark: yaml.Mark):
        super().__init__(message)
        self.message, self.allowed, self.mark = message, allowed, mark


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that notes a key written twice in one mapping (in `duplicates`) and
    refuses nesting deeper than MAX_YAML_DEPTH and documents that expand beyond MAX_YAML_SIZE.

    Depth and size are counted while composing, before anything recurses further: an alias
    costs the size and the height of the node it names. Merge keys (`<<`) and keys that are
    not scalars are not checked for repeats."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._peak = 0
        self._size = 0
        self._costs: dict[str, tuple[int, int]] = {}
        self._document = -1
        self._keys: list[Key] = []
        self._seen: dict[int, set[str]] = {}
        self.duplicates: list[DuplicateKey] = []

    def compose_document(self) -> Any:
        self._costs = {}
        self._document += 1
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            size, height = self._costs.get(event.anchor, (1, 1))
            self._charge(size, self._depth + height, event.start_mark)
            return super().compose_node(parent, index)
        step = self._step(parent, index)
        value = event.value if isinstance(event, yaml.ScalarEvent) else ""
        start_size, start_peak = self._size, self._peak
        self._depth += 1
        self._peak = self._depth
        self._charge(1 + len(value), self._depth, event.start_mark)
        if step is not None:
            self._keys.append(step)
        try:
            node = super().compose_node(parent, index)
        finally:
            if step is not None:
                self._keys.pop()
            height = self._peak - self._depth + 1
            self._depth -= 1
            self._peak = max(start_peak, self._peak)
        self._seen.pop(id(node), None)
        if event.anchor is not None:
            self._costs[event.anchor] = (self._size - start_size, height)
        return node

    def _step(self, parent: Any, index: Any) -> Key | None:
        """The path step of the node composed under `parent` at `index` (None at the root);
        a mapping value's key is checked against the keys before it."""
        if isinstance(parent, yaml.SequenceNode):
            return int(index)
        if not isinstance(parent, yaml.MappingNode):
            return None
        if not isinstance(index, yaml.ScalarNode):
            return "?"  # a key being composed, or the value of a complex key
        if not index.tag.endswith(":merge"):
            seen = self._seen.setdefault(id(parent), set())
            if index.value in seen:
                keys = (*self._keys, index.value)
                line = index.start_mark.line + 1
                self.duplicates.append(DuplicateKey(self._document, keys, line))
            seen.add(index.value)
        return index.value

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


def check_size(text: str, source: str) -> None:
    """Raise SpecError when `text` has more than MAX_SPEC_BYTES UTF-8 bytes."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        message = f"the file has {size:,} bytes, more than the limit"
        raise SpecError(source, [FieldProblem("", message, f"at most {MAX_SPEC_BYTES:,} bytes")])


def read_text(path: str | Path, source: str | None = None) -> str:
    """The text of the file at `path`, read as UTF-8 and no more than MAX_SPEC_BYTES.

    Raises SpecError naming `source` (default: the path) when the file cannot be read, is
    larger than the limit (found without reading all of it) or is not UTF-8 text."""
    source = str(path) if source is None else source
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SPEC_BYTES + 1)
            size = os.fstat(file.fileno()).st_size if len(data) > MAX_SPEC_BYTES else 0
    except FileNotFoundError:
        raise SpecError(source, [FieldProblem("", "cannot read file: file not found")]) from None
    except OSError as exc:
        problem = FieldProblem("", f"cannot read file: {exc.strerror or exc}")
        raise SpecError(source, [problem]) from None
    if len(data) > MAX_SPEC_BYTES:
        counted = f"{size:,}" if size > MAX_SPEC_BYTES else f"over {MAX_SPEC_BYTES:,}"
        message = f"the file has {counted} bytes, more than the limit"
        raise SpecError(source, [FieldProblem("", message, f"at most {MAX_SPEC_BYTES:,} bytes")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"byte {exc.start} is not UTF-8 text"
        raise SpecError(source, [FieldProblem("", message, UTF8_ALLOWED)]) from None


def load_stream(
    text: str, source: str, *, locate: Locate = locate_in_document
) -> list[Any]:
    """Every YAML document of `text`, in order (an empty document is None).

    Raises SpecError naming `source`: text over MAX_SPEC_BYTES before it is parsed; a syntax
    error or a limit at path `line N`; every key written twice, at the path `locate` gives."""
    check_size(text, source)
    try:
        stream, duplicates = _compose_all(text)
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
    if duplicates:
        raise SpecError(source, [_duplicate(stream, found, locate) for found in duplicates])
    return stream


def _compose_all(text: str) -> tuple[list[Any], list[DuplicateKey]]:
    """The documents of `text` and the keys written twice in them (BoundedLoader's errors
    propagate, a ReaderError for unprintable characters among them)."""
    loader = BoundedLoader(text)
    try:
        stream = []
        while loader.check_data():
            stream.append(loader.get_data())
        return stream, loader.duplicates
    finally:
        loader.dispose()


def _duplicate(stream: list[Any], found: DuplicateKey, locate: Locate) -> FieldProblem:
    path = locate(stream, found.document, found.keys)
    message = f"duplicate key {str(found.keys[-1])!r} (line {found.line})"
    return FieldProblem(path, message, DUPLICATE_ALLOWED)


def load_document(text: str, source: str) -> Any:
    """The one YAML document of `text` (None when it has none); `load_stream`'s checks, and a
    file of several documents is refused."""
    stream = load_stream(text, source)
    if len(stream) > 1:
        message = f"the file holds {len(stream)} YAML documents"
        raise SpecError(source, [FieldProblem("", message, "one document (no '---' between)")])
    return stream[0] if stream else None


def load_file(path: str | Path) -> Any:
    """`load_document` of the file at `path` (`read_text`'s checks first)."""
    return load_document(read_text(path), str(path))
