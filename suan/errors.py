"""Exceptions shared across Suan, in one place.

`SpecError` is raised for user mistakes in input files: it names the file, the field path,
what was wrong and what is allowed. The CLI prints it without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One problem in user input: where (a dotted field path), what was wrong, what is allowed."""

    path: str
    message: str
    allowed: str = ""

    def __str__(self) -> str:
        text = f"{self.path or '<root>'}: {self.message}"
        return f"{text} (allowed: {self.allowed})" if self.allowed else text


class SuanError(Exception):
    """Base class for every error Suan raises on purpose."""


class SpecError(SuanError):
    """Invalid user input (a spec file, a CLI value). Carries one or more `FieldProblem`s."""

    def __init__(self, source: str, problems: list[FieldProblem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class UnknownAcceleratorError(SuanError):
    """An accelerator name that matches no catalog entry or alias."""


class PolicyError(SuanError):
    """An unknown policy or plugin name, or a duplicate registration."""
