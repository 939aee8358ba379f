"""Figures of one replay: job completion time (JCT), queueing delay, makespan, utilisation,
finish-time fairness and a per-queue breakdown.

Definitions (all times in seconds):
- JCT = finish - submit; queueing delay = first start - submit (the wait before a job first
  runs; time lost to preemption shows in JCT, not here).
- makespan = last finish - first submit.
- GPU allocation utilisation = allocated GPU-seconds / capacity GPU-seconds over the makespan;
  busy utilisation counts only work that survived (no restart overhead, no work lost to
  preemption or failure); `gpu_utilization` is the busy one, the peers' definition
  (sum of duration x GPUs over GPUs x makespan on a homogeneous cluster).
- finish-time fairness rho = JCT / the job's run time alone on its placement (Themis, NSDI'20,
  with one tenant per job): 1 is ideal; mean, p95 and max are reported.
- goodput (docs/goodput.md), per finished job: its JCT split into queue wait (JCT less the
  time it held devices), restart (restart overhead paid), lost (run time whose work a stop
  threw away), checkpoint (saves within the kept work) and productive (the rest of the kept
  work); scheduling goodput = held / JCT, runtime goodput = productive / held. The cluster's
  figures (`goodput`) sum each part in GPU-seconds over the finished jobs.
- batch (docs/simulator.md): `timeouts` counts the jobs a run of which reached its time
  limit, `timeout_device_s` the device-seconds those jobs held in all their runs (lost: the
  job did not finish); `dependency_cancelled` counts the jobs cancelled because a dependency
  could never be met; `mean_dependency_wait_s` is the mean wait from submission until the
  dependencies were met, over the jobs with dependencies that were met (None: none).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from suan.sim.simulator import SimResult
from suan.sim.state import JobState, Status


def _stats(values: list[float], prefix: str) -> dict[str, float]:
    if not values:
        return {f"avg_{prefix}_s": 0.0, f"median_{prefix}_s": 0.0, f"p95_{prefix}_s": 0.0,
                f"p99_{prefix}_s": 0.0}
    array = np.asarray(values, dtype=float)
    return {
        f"avg_{prefix}_s": float(array.mean()),
        f"median_{prefix}_s": float(np.median(array)),
        f"p95_{prefix}_s": float(np.percentile(array, 95)),
        f"p99_{prefix}_s": float(np.percentile(array, 99)),
    }


def _finished(result: SimResult) -> list[JobState]:
    return [s for s in result.jobs if s.status == Status.DONE and s.end is not None]


def _capacity_integral(timeline: list[tuple[float, float, int, int]], start: float,
                       end: float) -> tuple[float, float]:
    """(allocated GPU-seconds, capacity GPU-seconds) of the step functions over [start, end]."""
    allocated = capacity = 0.0
    for (t0, alloc, _, cap), (t1, *_rest) in pairwise(timeline):
        low, high = max(t0, start), min(t1, end)
        if high > low:
            allocated += alloc * (high - low)
            capacity += cap * (high - low)
    return allocated, capacity


def summarise(result: SimResult) -> dict[str, Any]:
    """Every headline figure of a replay, as JSON-ready numbers."""
    done = _finished(result)
    jct = [s.end - s.trace.submit_time for s in done]  # type: ignore[operator]
    queue = [s.first_start - s.trace.submit_time for s in done]  # type: ignore[operator]
    first = min((s.trace.submit_time for s in result.jobs), default=0.0)
    last = max((s.end for s in done), default=first)  # type: ignore[type-var]
    allocated, capacity = _capacity_integral(result.timeline, first, last)
    useful = sum(s.useful_gpu_s for s in done)
    rho = [(s.end - s.trace.submit_time) / max(1.0 / s.rate, 1e-9)  # type: ignore[operator]
           for s in done if s.rate > 0]
    figures: dict[str, Any] = {
        "policy": result.policy,
        "jobs": len(result.jobs),
        "finished": len(done),
        "rejected": sum(1 for s in result.jobs if s.status == Status.REJECTED),
        **_stats(jct, "jct"),
        **_stats(queue, "queue"),
        "makespan_s": float(last - first),
        "gpu_utilization": useful / capacity if capacity else 0.0,
        "gpu_allocation": allocated / capacity if capacity else 0.0,
        "ftf_mean": float(np.mean(rho)) if rho else 0.0,
        "ftf_p95": float(np.percentile(rho, 95)) if rho else 0.0,
        "ftf_max": float(np.max(rho)) if rho else 0.0,
        "preemptions": sum(s.preemptions for s in result.jobs),
        "migrations": sum(s.migrations for s in result.jobs),
        "failure_restarts": sum(s.failures for s in result.jobs),
        "node_failures": result.failures,
        "lost_gpu_hours": sum(s.lost_gpu_s for s in result.jobs) / 3600,
        "capacity_gpus": result.capacity,
        "events": result.events,
        "cycles": result.cycles,
        "wall_s": result.wall_s,
        "events_per_s": result.events / result.wall_s if result.wall_s else 0.0,
    }
    figures.update(batch_figures(result.jobs))
    figures["queues"] = per_queue(done)
    figures.update(cluster_goodput(done))
    return figures


def batch_figures(jobs: list[JobState]) -> dict[str, Any]:
    """Timeouts, the device-seconds they held, dependency cancellations and waits."""
    timed_out = [s for s in jobs if s.status == Status.TIMEOUT]
    waits = [s.dependency_wait_s for s in jobs if s.dependency_wait_s is not None]
    return {
        "timeouts": len(timed_out),
        "timeout_device_s": sum(s.attained for s in timed_out),
        "dependency_cancelled": sum(1 for s in jobs if s.status == Status.CANCELLED),
        "mean_dependency_wait_s": sum(waits) / len(waits) if waits else None,
    }


GOODPUT_PARTS = ("queue_wait_s", "restart_s", "lost_s", "checkpoint_s", "productive_s")


def job_goodput(state: JobState) -> dict[str, float] | None:
    """The parts of a finished job's JCT and its scheduling and runtime goodput (None for a
    job that did not finish)."""
    if state.status != Status.DONE or state.end is None or state.devices <= 0:
        return None
    wall = state.end - state.trace.submit_time
    held = state.attained / state.devices + (state.end - state.run_start)
    useful = state.useful_gpu_s / state.devices
    saving = 0.0
    if state.checkpoint_cost_s and state.interval_s:
        saving = useful * state.checkpoint_cost_s / (state.interval_s + state.checkpoint_cost_s)
    restart = min(state.restart_s, held)
    return {
        "queue_wait_s": max(0.0, wall - held),
        "restart_s": restart,
        "lost_s": max(0.0, held - useful - restart),
        "checkpoint_s": saving,
        "productive_s": useful - saving,
        "scheduling_goodput": held / wall if wall > 0 else 1.0,
        "runtime_goodput": (useful - saving) / held if held > 0 else 1.0,
    }


def cluster_goodput(done: list[JobState]) -> dict[str, Any]:
    """The finished jobs' goodput parts summed in GPU-seconds, and the two factors."""
    sums = dict.fromkeys(GOODPUT_PARTS, 0.0)
    for state in done:
        figures = job_goodput(state)
        if figures is not None:
            for name in GOODPUT_PARTS:
                sums[name] += figures[name] * state.devices
    wall = sum(sums.values())
    held = wall - sums["queue_wait_s"]
    return {
        "goodput_gpu_s": {name.removesuffix("_s"): value for name, value in sums.items()},
        "scheduling_goodput": held / wall if wall > 0 else None,
        "runtime_goodput": sums["productive_s"] / held if held > 0 else None,
    }


def per_queue(done: list[JobState]) -> dict[str, dict[str, float]]:
    """Jobs, average JCT and queueing delay, and GPU-hours per queue."""
    groups: dict[str, list[JobState]] = {}
    for state in done:
        groups.setdefault(state.trace.queue, []).append(state)
    table = {}
    for name in sorted(groups):
        members = groups[name]
        table[name] = {
            "jobs": len(members),
            "avg_jct_s": float(np.mean([s.end - s.trace.submit_time for s in members])),  # type: ignore[operator]
            "avg_queue_s": float(np.mean([s.first_start - s.trace.submit_time  # type: ignore[operator]
                                          for s in members])),
            "gpu_hours": sum(s.useful_gpu_s for s in members) / 3600,
        }
    return table


def job_rows(result: SimResult) -> list[dict[str, Any]]:
    """One row per job for the per-job CSV."""
    rows = []
    for state in result.jobs:
        submit = state.trace.submit_time
        rows.append({
            "policy": result.policy, "job_id": state.trace.job_id, "queue": state.trace.queue,
            "num_gpus": state.devices, "submit_s": submit, "duration_s": state.trace.duration_s,
            "first_start_s": state.first_start, "end_s": state.end,
            "jct_s": None if state.end is None else state.end - submit,
            "queue_s": None if state.first_start is None else state.first_start - submit,
            "accelerator": state.accelerator, "preemptions": state.preemptions,
            "migrations": state.migrations,
            "failures": state.failures, "status": state.status.name.lower(),
            "reason": state.reason,
            **(job_goodput(state) or dict.fromkeys((*GOODPUT_PARTS, "scheduling_goodput",
                                                    "runtime_goodput"))),
        })
    return rows
