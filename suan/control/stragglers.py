"""Stragglers: a rank whose recent step time is an outlier against the rest of its gang.

The rule: each rank's typical step time is the median of its last `WINDOW` reported step
times (a median, so that a lone slow step such as a garbage collection or a checkpoint save
moves it not at all); a rank is a straggler when that median is at least `RATIO` times the
median of the other ranks' medians. Judging a rank against the others (not a median that
includes it) lets a gang of two flag its slow half; a gang needs two ranks with at least
`MIN_STEPS` step times each before any rank is judged.

Why these numbers, none fitted to data:

- `RATIO` = 1.5 is the midpoint between a healthy rank (1x) and the slowdown the rule must
  catch (2x): a slowed rank clears it by 0.5, and a healthy rank would need a sustained 50 %
  excess over its peers, five times the ~10 % step-to-step spread of a synchronous training
  step, which a median of ten cannot reach by chance.
- `WINDOW` = 10 steps: a rank slowed 2x from some step on has a median over the threshold
  once 6 of its last 10 steps are slow, 6 steps later, well inside the 20 steps allowed, while
  up to 4 stray slow steps in 10 leave the median alone.

A rank should report its own step time (the work before the step's collective), not the
gang's: in synchronous training every rank waits for the slowest at the all-reduce, so a
wall-clock step time is the same on every rank and shows the gang slow, not which rank is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

from suan.control.progress_reader import WINDOW

RATIO = 1.5
MIN_STEPS = WINDOW // 2 + 1
"""Step times a rank needs before it is judged: more than half a window, so its median is
set by a majority of its own steps."""


@dataclass(frozen=True)
class Straggler:
    """A rank flagged as slow: its median step time, its peers' median, and their ratio."""

    rank: int
    step_time_s: float
    gang_median_s: float

    @property
    def ratio(self) -> float:
        return self.step_time_s / self.gang_median_s

    def message(self) -> str:
        """The `straggler` event's words."""
        return (
            f"rank {self.rank} step time {self.step_time_s:.3g}s is {self.ratio:.2f}x "
            f"the gang median {self.gang_median_s:.3g}s"
        )


def find_stragglers(step_times: Mapping[int, Sequence[float]]) -> list[Straggler]:
    """The stragglers among ranks -> their latest step times (oldest first), by the rule of
    the module doc, in rank order."""
    typical = {
        rank: median(list(times)[-WINDOW:])
        for rank, times in step_times.items()
        if len(times) >= MIN_STEPS
    }
    if len(typical) < 2:
        return []
    found = []
    for rank, own in sorted(typical.items()):
        peers = median(t for r, t in typical.items() if r != rank)
        if peers > 0 and own >= RATIO * peers:
            found.append(Straggler(rank, own, peers))
    return found
