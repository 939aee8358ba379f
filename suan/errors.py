"""Exceptions shared across Suan, in one place.

`SpecError` is raised for user mistakes in input files: it names the file, the field path,
what was wrong and what is allowed. The CLI prints it without a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

UNPRINTABLE = re.compile("[\x00\ud800-\udfff]")
"""Characters no text Suan passes on may hold: NUL, and UTF-16 surrogates (which no UTF-8
text, file name, argument or database column can carry)."""


def escaped(text: str) -> str:
    """`text` with NUL and surrogates written as Python escapes (`\\x00`, `\\ud800`)."""
    return UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


@dataclass(frozen=True)
class FieldProblem:
    """One problem in user input: where (a dotted field path), what was wrong, what is allowed."""

    path: str
    message: str
    allowed: str = ""

    def printable(self) -> FieldProblem:
        """This problem with NUL and surrogates escaped (so it can be printed and sent)."""
        fields = {"path": self.path, "message": self.message, "allowed": self.allowed}
        return replace(self, **{key: escaped(value) for key, value in fields.items()})

    def __str__(self) -> str:
        text = f"{self.path or '<root>'}: {self.message}"
        return f"{text} (allowed: {self.allowed})" if self.allowed else text


class SuanError(Exception):
    """Base class for every error Suan raises on purpose."""


class SpecError(SuanError):
    """Invalid user input (a spec file, a CLI value). Carries one or more `FieldProblem`s,
    their text made printable (`FieldProblem.printable`)."""

    def __init__(self, source: str, problems: list[FieldProblem]):
        self.source = escaped(source)
        self.problems = [problem.printable() for problem in problems]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.source}: {len(problems)} problem(s)\n{lines}")


class UnknownAcceleratorError(SuanError):
    """An accelerator name that matches no catalog entry or alias."""


class PolicyError(SuanError):
    """An unknown policy or plugin name, or a duplicate registration."""
