"""Files named on the command line: each is checked before a command reads it, so that a
missing, unreadable, binary file or a directory is a one-line error (exit code 2), not a
traceback; and the installed version of Suan.

`text_file` is the callback of every option or argument that names a file; `file_problem`
words an OSError of a file that went wrong later (the CLI's last guard, in main.py).
"""

from __future__ import annotations

import codecs
import errno
import os
from importlib import metadata
from pathlib import Path

import suan
from suan.errors import SuanError

SNIFF_BYTES = 64 * 1024
"""How much of a file is read to tell text from binary: enough for any header, and cheap for
a trace of gigabytes."""


class FileProblem(SuanError):
    """A file named on the command line that cannot be read as text."""


def installed_version() -> str:
    """The version of the installed `suan` distribution (its metadata), else the package's."""
    try:
        return metadata.version("suan")
    except metadata.PackageNotFoundError:
        return suan.__version__


def file_problem(exc: OSError) -> str:
    """One line for an OSError about a file: which file and what is wrong with it."""
    name = exc.filename
    if exc.errno == errno.ENOENT:
        return f"{name}: no such file or directory"
    if exc.errno == errno.EISDIR:
        return f"{name}: is a directory, not a file"
    if exc.errno == errno.EACCES:
        return f"{name}: permission denied (cannot read it)"
    return f"{name}: cannot read it ({exc.strerror or exc})"


def check_text_file(path: str | os.PathLike[str]) -> None:
    """FileProblem unless `path` is a file that can be opened and starts as UTF-8 text."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        exc.filename = exc.filename or os.fspath(path)
        raise FileProblem(file_problem(exc)) from None
    if b"\x00" in head:
        raise FileProblem(f"{os.fspath(path)}: is a binary file, not text")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        raise FileProblem(f"{os.fspath(path)}: is not UTF-8 text") from None


def text_file(path: Path | None) -> Path | None:
    """Typer callback of a file option or argument: the path, once `check_text_file` passes."""
    if path is not None:
        check_text_file(path)
    return path


def text_files(paths: list[Path] | None) -> list[Path] | None:
    """`text_file` for an option given several times."""
    for path in paths or ():
        check_text_file(path)
    return paths


FILE_SUFFIXES = (".yaml", ".yml", ".json", ".csv", ".txt")
"""Endings that make a value that may also be a name (a cluster shorthand, a built-in model)
a file name, so that a mistyped one is `no such file`, not an unknown name."""


def text_file_or_name(source: str | None) -> str | None:
    """Typer callback of a value that is a file or a name: checked as `text_file` when it
    names something that exists or ends like a file name; else passed on as a name."""
    if source is not None and (Path(source).exists() or source.endswith(FILE_SUFFIXES)):
        check_text_file(source)
    return source
