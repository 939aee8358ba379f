"""A tiny training job that reports progress for the goodput tests (no torch needed).

Every rank runs STEPS steps of STEP_S seconds and prints a progress line after each
(`suan.progress.report`: its step, the tokens it trained on in this attempt, its step time);
every CKPT_EVERY steps rank 0 saves the step reached to SUAN_CHECKPOINT_DIR/step, which takes
CKPT_S seconds, and every rank reports that save's time. A restarted attempt resumes from
the saved step. Rank 0 writes the SUAN_CHECKPOINT_* variables it saw to
SUAN_CHECKPOINT_DIR/interval-<attempt>.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from suan.progress import report

TOKENS_PER_STEP = 1000


def main() -> None:
    ckpt = Path(os.environ["SUAN_CHECKPOINT_DIR"])
    rank, attempt = int(os.environ["RANK"]), int(os.environ["SUAN_RESTART_COUNT"])
    steps, step_s = int(os.environ["STEPS"]), float(os.environ["STEP_S"])
    every, save_s = int(os.environ["CKPT_EVERY"]), float(os.environ["CKPT_S"])
    if rank == 0:
        seen = {k: v for k, v in os.environ.items() if k.startswith("SUAN_") and "CHECKPOINT" in k}
        (ckpt / f"interval-{attempt}.json").write_text(json.dumps(seen))
    step_file = ckpt / "step"
    start = int(step_file.read_text()) if step_file.exists() else 0
    for step in range(start + 1, steps + 1):
        began = time.monotonic()
        time.sleep(step_s)
        saved = None
        if step % every == 0:
            time.sleep(save_s)
            saved = save_s
            if rank == 0:
                (ckpt / "step.tmp").write_text(str(step))
                os.replace(ckpt / "step.tmp", step_file)
        tokens = (step - start) * TOKENS_PER_STEP
        report(step, tokens=tokens, step_time_s=time.monotonic() - began, checkpoint_s=saved)


if __name__ == "__main__":
    main()
