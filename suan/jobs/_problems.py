"""The spec error shaper, under its older name: everything here lives in `suan.problems`."""

from __future__ import annotations

from suan.problems import (
    SPEC_ERROR,
    describe_errors,
    field_error,
    join_path,
    pydantic_problems,
    show_value,
    spec_error,
)

__all__ = [
    "SPEC_ERROR",
    "describe_errors",
    "field_error",
    "join_path",
    "pydantic_problems",
    "show_value",
    "spec_error",
]
