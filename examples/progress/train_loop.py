"""A plain-Python "training" loop that reports its progress for Suan to read (no torch).

Every rank runs STEPS steps of STEP_S seconds, timing each with `suan.progress_timer.StepTimer`
(one `{"suan": "progress", ...}` line a step in the rank's log). Rank 0 saves the step reached
to SUAN_CHECKPOINT_DIR/step every CHECKPOINT_EVERY steps, and every rank resumes from it after a
restart. Faults to try the control plane's detection with:

    SLOW_RANK=R SLOW_FROM=K   rank R's steps take twice as long from step K on (a straggler)
    FAULT=stop FAULT_RANK=R FAULT_AT=K
                              rank R stops itself with SIGSTOP at step K of its first attempt
                              (a hang: set spec.health.noProgressTimeout)
    FAULT=kill ...            rank R kills itself with SIGKILL there instead (a lost rank)

Before a fault the rank writes the time (its clock) to SUAN_CHECKPOINT_DIR/fault.

Submit it with examples/progress/job.yaml.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from suan.progress_timer import StepTimer


def number(name: str, default: str) -> float:
    return float(os.environ.get(name, default))


def main() -> None:
    rank = int(os.environ.get("RANK", "0"))
    attempt = int(os.environ.get("SUAN_RESTART_COUNT", "0"))
    checkpoint = Path(os.environ.get("SUAN_CHECKPOINT_DIR", "."))
    saved = checkpoint / "step"
    start = int(saved.read_text()) if saved.exists() else 0
    steps, step_s = int(number("STEPS", "100")), number("STEP_S", "0.1")
    every = int(number("CHECKPOINT_EVERY", "10"))
    slow = int(number("SLOW_RANK", "-1")) == rank
    slow_from = int(number("SLOW_FROM", "0"))
    fault_at = int(number("FAULT_AT", "-1")) if int(number("FAULT_RANK", "-1")) == rank else -1
    fault = {"stop": signal.SIGSTOP, "kill": signal.SIGKILL}.get(os.environ.get("FAULT", ""))
    timer = StepTimer(start_step=start, tokens_per_step=int(number("TOKENS_PER_STEP", "4096")))
    while timer.steps_done < steps:
        if attempt == 0 and fault is not None and timer.steps_done == fault_at:
            (checkpoint / "fault").write_text(repr(time.time()))
            os.kill(os.getpid(), fault)
        with timer.step():
            time.sleep(step_s * (2 if slow and timer.steps_done >= slow_from else 1))
        if rank == 0 and timer.steps_done % every == 0:
            with timer.checkpoint():
                (checkpoint / "step.tmp").write_text(str(timer.steps_done))
                os.replace(checkpoint / "step.tmp", saved)


if __name__ == "__main__":
    main()
