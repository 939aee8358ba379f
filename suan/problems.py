"""The one error shaper of spec files: validation errors become FieldProblems that say what
is allowed.

Every spec file kind (job and queue files, cluster specs, accelerator catalogs, the server
config) validates its documents with pydantic models and reports each problem the same way, as
a `FieldProblem` with a dotted `path`, a `message` quoting the value that was given, and what
is `allowed`: an unknown key is `unknown field 'x'; did you mean 'y'?` with the keys of that
mapping, a wrong type `expected a mapping, got a list`, a value out of range `-3 is out of
range` with the range, a missing key `required field is missing`.

Validators in the spec models report problems by raising `spec_error(problems)`: each
`FieldProblem`'s path is relative to the field or model being validated ("" for itself,
"share", "type.1" below it), so one validator can report several problems at once.
`describe_errors` expands those and rewrites pydantic's own errors into the form above.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from suan.errors import FieldProblem

SPEC_ERROR = "suan_spec"

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}

_MAPPINGS = ("model_type", "model_attributes_type")
"""Errors where a mapping of a schema model was expected: the problem lists its keys."""

_BOUNDS = {
    "greater_than": "greater than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
    "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} item(s)",
    "string_too_short": "at least {min_length} character(s)",
    "string_too_long": "at most {max_length} character(s)",
}


def spec_error(problems: list[FieldProblem]) -> PydanticCustomError:
    """The exception a validator raises to report `problems` (paths relative to its field)."""
    summary = "; ".join(str(problem) for problem in problems)
    return PydanticCustomError(SPEC_ERROR, "{summary}", {"summary": summary, "problems": problems})


def field_error(message: str, allowed: str = "") -> PydanticCustomError:
    """`spec_error` for one problem at the field being validated."""
    return spec_error([FieldProblem("", message, allowed)])


def pydantic_problems(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """pydantic's own messages as FieldProblems at dotted paths under `prefix` (the raw form;
    `describe_errors` is the one spec files report)."""
    problems = []
    for item in error.errors():
        path = join_path(prefix, *item["loc"])
        problems.append(FieldProblem(path, item["msg"]))
    return problems


def join_path(*parts: object) -> str:
    """Dotted path of the non-empty parts: join_path("spec", "", 0, "name") == "spec.0.name"."""
    return ".".join(str(part) for part in parts if part != "")


def describe_errors(
    error: ValidationError, root: type[BaseModel], prefix: str = ""
) -> list[FieldProblem]:
    """FieldProblems for every error in `error`, raised validating model `root`.

    Paths are `prefix` plus pydantic's location, dotted, list items as their index.
    """
    problems: list[FieldProblem] = []
    for base, item in zip(pydantic_problems(error, prefix), error.errors(), strict=True):
        problems.extend(_describe(base.path, item, root))
    return problems


def _describe(path: str, item: ErrorDetails, root: type[BaseModel]) -> list[FieldProblem]:
    kind, ctx = item["type"], item.get("ctx") or {}
    if kind == SPEC_ERROR:
        return [
            FieldProblem(join_path(path, p.path), p.message, p.allowed) for p in ctx["problems"]
        ]
    if kind == "extra_forbidden":
        return [_unknown_field(path, item, root)]
    if kind == "missing":
        return [FieldProblem(path, "required field is missing")]
    if kind == "literal_error":
        return [FieldProblem(path, f"{show_value(item['input'])} is not allowed", ctx["expected"])]
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {show_value(item['input'])}"
        keys = _field_names(root, item["loc"]) if kind in _MAPPINGS else []
        return [FieldProblem(path, message, ", ".join(sorted(keys)))]
    if kind in _BOUNDS:
        allowed = _BOUNDS[kind].format(**{key: _plain(value) for key, value in ctx.items()})
        return [FieldProblem(path, f"{show_value(item['input'])} is out of range", allowed)]
    return [FieldProblem(path, item["msg"])]


def _plain(value: Any) -> Any:
    """A whole float as an int (0.0 -> 0), for bounds in messages."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def show_value(value: Any) -> str:
    """Short text for a user's value in a message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_field(path: str, item: ErrorDetails, root: type[BaseModel]) -> FieldProblem:
    key = str(item["loc"][-1])
    fields = _field_names(root, item["loc"][:-1])
    message = f"unknown field {key!r}"
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return FieldProblem(path, message, ", ".join(sorted(fields)))


def _field_names(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys (aliases) the model at `loc` below `root` accepts; [] if none is found there."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if _is_model(current):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if str(part) not in fields:
                return []
            current = fields[str(part)].annotation
        else:
            args = get_args(current)
            current = args[-1] if args else None
    current = _unwrap(current)
    if not _is_model(current):
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _unwrap(annotation: Any) -> Any:
    """X for `X | None` or `Annotated[X, ...]`, else the annotation unchanged."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else annotation
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
