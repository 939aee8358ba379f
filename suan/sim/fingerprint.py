"""A replay's decisions as text, to tell whether two replays decided alike.

`decision_record(result)` lists every job's first start, end, preemptions and migrations
(times rounded to the millisecond), one line per job in trace order; two replays of the same
jobs made the same decisions exactly when their records are equal (up to that rounding).
`fingerprint(results)` is a short SHA-256 digest of the records of several replays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from suan.sim.simulator import SimResult


def _ms(seconds: float | None) -> str:
    return "None" if seconds is None else repr(round(seconds, 3))


def decision_record(result: SimResult) -> str:
    """One line per job: `index first_start end preemptions migrations`."""
    return "".join(
        f"{s.index} {_ms(s.first_start)} {_ms(s.end)} {s.preemptions} {s.migrations}\n"
        for s in result.jobs
    )


def fingerprint(results: Iterable[SimResult]) -> str:
    """The first 16 hex digits of the SHA-256 of the replays' records, in the order given."""
    digest = hashlib.sha256()
    for result in results:
        digest.update(decision_record(result).encode())
    return digest.hexdigest()[:16]
