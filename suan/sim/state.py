"""What the simulator knows about one job while it replays: status, progress and history."""

from __future__ import annotations

from enum import IntEnum

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sim.workload import TraceJob


class Status(IntEnum):
    """Where a job is. PENDING jobs are offered to the scheduler; HELD ones have arrived but
    wait for their dependencies or their array's throttle (`suan.sim.batch`). DONE, REJECTED
    (it can never fit the cluster, or its queue refuses its time limit), TIMEOUT (a run
    outlived its time limit) and CANCELLED (a dependency can never be met) are final."""

    FUTURE = 0
    PENDING = 1
    RUNNING = 2
    DONE = 3
    REJECTED = 4
    TIMEOUT = 5
    CANCELLED = 6
    HELD = 7


class JobState:
    """Mutable per-job record. `progress` is the checkpointed fraction of the work done;
    during a run, work started at `work_start` (after any restart overhead) at `rate`
    (fraction per second). `limit_end` is when the current run is stopped by its time limit
    (None: it ends within it); `reason` says why a job ended other than done, or why it
    waits (with `wait_code`; for `dependency`, `BatchGate.reason` says);
    `dependency_wait_s` is how long it waited for its dependencies (None: it had none
    met)."""

    __slots__ = (
        "accelerator", "alloc", "armed", "arrived", "attained", "checkpoint_cost_s",
        "dependency_wait_s", "devices", "end", "epoch", "failures", "first_start", "index",
        "interval_s", "job", "kept_s", "limit_end", "lost_gpu_s", "migrations", "preemptions",
        "progress", "rate", "reason", "restart_s", "run_start", "runs", "status", "trace",
        "useful_gpu_s", "wait_code", "work_start",
    )

    def __init__(self, index: int, trace: TraceJob, job: Job):
        self.index = index
        self.trace = trace
        self.job = job
        self.devices = trace.num_gpus
        self.status = Status.FUTURE
        self.progress = 0.0
        self.rate = 0.0
        self.run_start = 0.0
        self.work_start = 0.0
        self.alloc: Allocation | None = None
        self.accelerator: str | None = None
        self.epoch = 0
        self.attained = 0.0
        self.first_start: float | None = None
        self.end: float | None = None
        self.preemptions = 0
        self.migrations = 0
        self.armed = False
        self.failures = 0
        self.runs = 0
        self.kept_s = 0.0
        self.useful_gpu_s = 0.0
        self.lost_gpu_s = 0.0
        self.restart_s = 0.0
        self.interval_s: float | None = None  # its own (runtime.checkpoint_plan), else None
        self.checkpoint_cost_s = 0.0
        self.limit_end: float | None = None
        self.reason = ""
        self.wait_code = ""
        self.arrived = 0.0
        self.dependency_wait_s: float | None = None

    def checkpoint_period_s(self, default: float | None) -> float | None:
        """Wall seconds between the points a stop falls back to: the job's interval plus
        its save, else `default` (the runtime model's interval)."""
        if self.interval_s is None:
            return default
        return self.interval_s + self.checkpoint_cost_s

    def remaining_s(self, now: float) -> float:
        """Oracle seconds of work left at the current (or last) rate."""
        done = self.progress
        if self.status == Status.RUNNING:
            done += max(0.0, now - self.work_start) * self.rate
        if self.rate <= 0:
            return self.trace.duration_s * (1.0 - done)
        return max(0.0, 1.0 - done) / self.rate

    def attained_at(self, now: float) -> float:
        """Device-seconds received so far, counting the current run."""
        if self.status == Status.RUNNING:
            return self.attained + self.devices * (now - self.run_start)
        return self.attained
