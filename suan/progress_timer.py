"""Timing a training loop's steps and printing their progress lines (`suan.progress`).

    timer = StepTimer(start_step=resumed_at, tokens_per_step=batch * seq)
    for batch in data:
        with timer.step():          # the rank's own work: forward, backward
            loss = train_step(batch)
        all_reduce_and_update()     # outside: waiting for the gang is not this rank's time
        if timer.steps_done % 500 == 0:
            with timer.checkpoint():
                save()

Each `step()` block prints one line with the step number (counted from `start_step`), the
cumulative tokens when `tokens_per_step` is given, and the block's wall time; a checkpoint
timed with `checkpoint()` is reported on the next step's line. Time only the rank's own work
when the step ends in a collective: every rank waits for the slowest there, so a step time
that includes the wait is the same on every rank and cannot show which rank is slow.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TextIO

from suan.progress import report


class StepTimer:
    """Counts and times steps and reports each as a progress line on `stream` (stdout)."""

    def __init__(
        self, start_step: int = 0, tokens_per_step: int | None = None,
        stream: TextIO | None = None,
    ):
        if start_step < 0:
            raise ValueError(f"start_step must be 0 or more, not {start_step}")
        self.steps_done = start_step
        self.tokens_per_step = tokens_per_step
        self.stream = stream
        self._checkpoint_s: float | None = None

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Time one step; on leaving the block without an error, report it."""
        began = time.perf_counter()
        yield
        self.done(time.perf_counter() - began)

    def done(self, step_time_s: float) -> None:
        """Report one step that took `step_time_s` (for loops that time steps themselves)."""
        self.steps_done += 1
        tokens = None if self.tokens_per_step is None else self.steps_done * self.tokens_per_step
        report(self.steps_done, tokens=tokens, step_time_s=round(step_time_s, 6),
               checkpoint_s=self._checkpoint_s, stream=self.stream)
        self._checkpoint_s = None

    @contextlib.contextmanager
    def checkpoint(self) -> Iterator[None]:
        """Time a checkpoint save; its seconds go on the next step's line."""
        began = time.perf_counter()
        yield
        self._checkpoint_s = round(time.perf_counter() - began, 6)
