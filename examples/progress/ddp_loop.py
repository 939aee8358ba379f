"""A tiny torch DDP loop over gloo that reports its progress for Suan to read.

Each step every rank computes a gradient on its own batch (timed by
`suan.progress_timer.StepTimer`: the rank's own work) and then all-reduces it with the gang.
Set FAULT=stop FAULT_RANK=R FAULT_AT=K to have rank R SIGSTOP itself at step K of its first
attempt: the other ranks then block in the all-reduce, reporting nothing, and the gang is
restarted once `spec.health.noProgressTimeout` passes (a hung collective).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist

from suan.progress_timer import StepTimer


def main() -> None:
    dist.init_process_group(os.environ.get("SUAN_COLLECTIVE_BACKEND", "gloo"))
    rank, attempt = dist.get_rank(), int(os.environ.get("SUAN_RESTART_COUNT", "0"))
    checkpoint = Path(os.environ.get("SUAN_CHECKPOINT_DIR", "."))
    steps = int(os.environ.get("STEPS", "50"))
    fault_rank = int(os.environ.get("FAULT_RANK", "-1"))
    fault_at = int(os.environ.get("FAULT_AT", "-1"))
    weights = torch.zeros(256)
    timer = StepTimer()
    while timer.steps_done < steps:
        if attempt == 0 and rank == fault_rank and timer.steps_done == fault_at:
            (checkpoint / "fault").write_text(repr(time.time()))
            os.kill(os.getpid(), signal.SIGSTOP)
        with timer.step():
            batch = torch.randn(64, 256)
            gradient = (batch @ weights - 1.0) @ batch / len(batch)
            time.sleep(0.05)
        dist.all_reduce(gradient)
        weights -= 0.01 * gradient / dist.get_world_size()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
