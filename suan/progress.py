"""Training progress, reported by a rank as one JSON line in its own log.

A rank calls `report(step, tokens=..., step_time_s=...)` (or prints the same line itself) and
the control plane reads it back through the executor's `logs()`: no token or address goes into
the job, and any engine that keeps a rank's output carries it. A line is

    {"suan": "progress", "step": 120, "tokens": 491520, "step_time_s": 0.84}

`step` is the rank's step count, `tokens` the tokens THIS rank has processed so far (its own
share, not the gang's: program goodput sums the ranks), `step_time_s` the step's seconds;
with optional `checkpoint_s` (seconds the step spent saving a checkpoint) and `time` (the
rank's clock, informational only: the reader stamps each record with its own clock). Anything
else in the log is ignored; a malformed progress line is skipped, never fatal.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TextIO

MARK = "suan"
KIND = "progress"


@dataclass(frozen=True)
class Progress:
    """One progress record of one rank."""

    step: int
    tokens: int | None = None
    step_time_s: float | None = None
    checkpoint_s: float | None = None


def line(progress: Progress) -> str:
    """The log line for `progress` (no newline)."""
    body: dict[str, object] = {MARK: KIND, "step": progress.step}
    for key in ("tokens", "step_time_s", "checkpoint_s"):
        value = getattr(progress, key)
        if value is not None:
            body[key] = value
    body["time"] = round(time.time(), 3)
    return json.dumps(body, separators=(", ", ": "))


def report(
    step: int,
    *,
    tokens: int | None = None,
    step_time_s: float | None = None,
    checkpoint_s: float | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print one progress line for this rank and flush it, so the reader sees it at once."""
    out = stream or sys.stdout
    out.write(line(Progress(step, tokens, step_time_s, checkpoint_s)) + "\n")
    out.flush()


def parse(text: str) -> Progress | None:
    """The record on one log line, or None when the line is not a well-formed progress line."""
    text = text.strip()
    if not text.startswith("{") or f'"{MARK}"' not in text:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get(MARK) != KIND:
        return None
    step = body.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return None
    return Progress(
        step=step,
        tokens=_number(body.get("tokens"), int),
        step_time_s=_number(body.get("step_time_s"), float),
        checkpoint_s=_number(body.get("checkpoint_s"), float),
    )


def scan(chunk: str) -> tuple[list[Progress], int]:
    """The records in `chunk` (text read from a log) and how many characters of it were
    whole lines: a caller reading a growing log keeps the rest and reads on from there."""
    end = chunk.rfind("\n") + 1
    found = [p for p in map(parse, chunk[:end].splitlines()) if p is not None]
    return found, end


def _number(value: object, kind: type) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value < 0 or value != value:  # negative or NaN
        return None
    return kind(value)
