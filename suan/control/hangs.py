"""Hangs: a gang in which a rank that reported progress has reported none for too long.

A rank that printed at least one progress line (`suan.progress`) in the current attempt and
then prints none for the job's no-progress timeout is stuck: stopped by a signal (SIGSTOP),
blocked in a collective whose peer died or hung, deadlocked. Its gang is stopped and restarted
like a gang whose rank failed (it counts as a restart). Ranks that never reported progress, and
ranks that have exited, are not judged; a hang is timed from no earlier than when this server
began reading the attempt (`GangProgress.watched_since`), so a server restart never makes a
healthy gang look hung.

The timeout is the job's `spec.health.noProgressTimeout`, else the server's
`no_progress_timeout_s`; with neither, no hang is detected (off by default: the right value
depends on a job's step and checkpoint times, and a wrong guess restarts healthy jobs).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from suan.control.progress_reader import GangProgress


@dataclass(frozen=True)
class Hang:
    """The rank that has been quiet longest: its last step and for how long it was quiet."""

    rank: int
    step: int
    quiet_s: float

    def message(self) -> str:
        """The `hang` event's words."""
        return f"no progress for {self.quiet_s:.0f}s since step {self.step}; restarting the gang"


def find_hang(
    gang: GangProgress, running: Collection[int], timeout_s: float | None, now: float
) -> Hang | None:
    """The hang in `gang` at `now` (None: none, or no timeout), judging only the ranks in
    `running` that have reported progress."""
    if timeout_s is None:
        return None
    quiet = [
        Hang(rank, seen.step, now - max(seen.seen_at, gang.watched_since))
        for rank, seen in gang.ranks.items()
        if rank in running
    ]
    longest = max(quiet, key=lambda hang: hang.quiet_s, default=None)
    return longest if longest is not None and longest.quiet_s >= timeout_s else None
