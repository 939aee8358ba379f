"""Where the shared data lives: public traces, peers' inputs and planner calibration rows.

One setting decides it, the environment variable `SUAN_SHARED`: the folder that holds
`traces/`, `peer-inputs/` and `planner/`. Unset, it is the folder `shared` beside the
checkout (`../shared` from the repository root), where CI puts it. `SUAN_SHARED=none` says
that the data is absent on purpose: the tests that need it skip instead of failing.

Every reader of the shared data (the simulator's reproductions, the planner's calibration,
the benchmarks and the tests) resolves its paths here and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

from suan.errors import FieldProblem, SpecError

ENV = "SUAN_SHARED"
"""The environment variable naming the shared data folder."""
ABSENT = "none"
"""The value of `ENV` that says the shared data is absent on purpose."""
DEFAULT = Path(__file__).resolve().parents[1].parent / "shared"
"""The shared data folder when `ENV` is unset: `shared` beside the checkout."""


def declared_absent() -> bool:
    """True when `SUAN_SHARED=none`: the shared data is absent on purpose."""
    return os.environ.get(ENV, "").strip().lower() == ABSENT


def shared_dir() -> Path:
    """The shared data folder: `$SUAN_SHARED`, else `shared` beside the checkout. The folder
    may not exist; `require_shared` checks."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT


def shared_path(*parts: str) -> Path:
    """The path of `parts` under the shared data folder (not checked to exist)."""
    return shared_dir().joinpath(*parts)


def require_shared(*parts: str) -> Path:
    """The path of `parts` under the shared data folder; SpecError naming the path and the
    setting to change when it does not exist."""
    path = shared_path(*parts)
    if path.exists():
        return path
    if declared_absent():
        message = f"{ENV}=none: the shared data is absent"
    else:
        message = (f"not found: set {ENV} to the folder holding traces/, peer-inputs/ and "
                   f"planner/ (now {shared_dir()})")
    raise SpecError(str(path), [FieldProblem(ENV, message)])
