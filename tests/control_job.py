"""A tiny distributed "training" job for the control-plane tests (no torch needed).

Every rank records its environment and its launch, then runs STEPS steps of STEP_S seconds.
Rank 0 saves the step reached to SUAN_CHECKPOINT_DIR/step after every step and, on a restart,
resumes from it. Files under SUAN_CHECKPOINT_DIR:

    env-<attempt>-<rank>.json   the Suan and torchrun variables the rank saw
    launches                    one line per rank start: "<attempt> <rank> <pid>"
    step                        the last checkpointed step (rank 0)
    resumed-<attempt>           the step an attempt resumed from (rank 0)
    done                        written by rank 0 when all steps are done
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

NAMES = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "SUAN_JOB_ID",
    "SUAN_CHECKPOINT_DIR",
    "SUAN_RESTART_COUNT",
    "SUAN_COLLECTIVE_BACKEND",
    "CUDA_VISIBLE_DEVICES",
    "SUAN_TOKEN",
    "SUAN_TP",
    "SUAN_PP",
    "SUAN_DP",
    "SUAN_CP",
    "SUAN_PLAN_ERROR",
)


def main() -> None:
    ckpt = Path(os.environ["SUAN_CHECKPOINT_DIR"])
    rank, attempt = int(os.environ["RANK"]), int(os.environ["SUAN_RESTART_COUNT"])
    seen = {name: os.environ.get(name) for name in NAMES}
    (ckpt / f"env-{attempt}-{rank}.json").write_text(json.dumps(seen))
    with open(ckpt / "launches", "a") as handle:
        handle.write(f"{attempt} {rank} {os.getpid()}\n")
    step_file = ckpt / "step"
    start = int(step_file.read_text()) if step_file.exists() else 0
    if rank == 0:
        (ckpt / f"resumed-{attempt}").write_text(str(start))
    steps, step_s = int(os.environ.get("STEPS", "10")), float(os.environ.get("STEP_S", "0.1"))
    for step in range(start, steps):
        time.sleep(step_s)
        if rank == 0:
            (ckpt / "step.tmp").write_text(str(step + 1))
            os.replace(ckpt / "step.tmp", step_file)
        print(f"rank {rank} step {step + 1}/{steps}", flush=True)
    if rank == 0:
        (ckpt / "done").write_text(str(attempt))


if __name__ == "__main__":
    main()
