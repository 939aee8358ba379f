"""Suan's recovery rules and the baseline's, turned into the numbers one run needs.

Suan: Daly's checkpoint interval from the blocking save cost and the job's MTBF (the same
`best_interval_s` the control plane hands a job), hot spares (`default_spares`), and a hang
caught by the no-progress timeout. Baseline: a save every hour, no spares, a hang caught by
PyTorch's NCCL timeout. Both see the same failures, crash detection, restart overhead,
repair time and storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from suan.checkpoint_interval import best_interval_s, job_mtbf_s
from suan.sim.ettr import Cadence, Setting
from suan.sim.ettr_inputs import (
    ASYNC_BLOCKING_S,
    BASELINE_INTERVAL_S,
    CRASH_DETECTION_S,
    DAY_S,
    GPUS_PER_NODE,
    NCCL_TIMEOUT_S,
    SPARE_SHORTFALL,
    Scenario,
)
from suan.sim.ettr_job import TrainingJob
from suan.sim.failure_mix import TABLE_5, node_replacing_per_gpu_day, unexpected_per_gpu_day


@dataclass(frozen=True)
class Rules:
    """How a job recovers: work between saves, hot spares, and the hang timeout."""

    name: str
    interval_s: float
    spares: int
    hang_detection_s: float

    def as_dict(self) -> dict[str, object]:
        return {"checkpoint_interval_s": self.interval_s, "hot_spare_nodes": self.spares,
                "hang_detection_s": self.hang_detection_s}


def job_mtbf(scenario: Scenario) -> float:
    """Seconds between unexpected interruptions of the whole job (Table 5's rate)."""
    return job_mtbf_s(unexpected_per_gpu_day() * GPUS_PER_NODE, scenario.nodes)


def blocking_s(scenario: Scenario, job: TrainingJob) -> float:
    """Seconds a save stops training: the whole write, or the async staging part of it."""
    write = job.write_s(scenario.storage_gbs)
    return min(ASYNC_BLOCKING_S, write) if scenario.async_checkpoint else write


def cadence(scenario: Scenario, job: TrainingJob, interval_s: float) -> Cadence:
    """`interval_s` rounded up to whole steps, and never shorter than an async write's tail
    (a save must be durable before the next one starts)."""
    write = job.write_s(scenario.storage_gbs)
    blocking = blocking_s(scenario, job)
    needed = max(interval_s, write - blocking, job.step_time_s)
    steps = math.ceil(needed / job.step_time_s - 1e-9)
    return Cadence(steps * job.step_time_s, blocking, write)


def default_spares(scenario: Scenario) -> int:
    """The fewest hot spares S with P(nodes in repair >= S) <= SPARE_SHORTFALL, the count in
    repair being Poisson with mean (node faults per second x repair seconds)."""
    mean = node_replacing_per_gpu_day() * scenario.gpus / DAY_S * scenario.repair_s
    if mean <= 0:
        return 0
    spares, below, term = 0, 0.0, math.exp(-mean)
    while 1.0 - below > SPARE_SHORTFALL:
        below += term
        spares += 1
        term *= mean / spares
    return spares


def suan_rules(scenario: Scenario, job: TrainingJob) -> Rules:
    cost = blocking_s(scenario, job)
    interval = best_interval_s(cost, job_mtbf(scenario))
    spares = default_spares(scenario) if scenario.spares is None else scenario.spares
    return Rules("suan", cadence(scenario, job, interval).interval_s, spares,
                 2.0 * (job.step_time_s + cost))


def baseline_rules(scenario: Scenario, job: TrainingJob) -> Rules:
    return Rules("baseline", cadence(scenario, job, BASELINE_INTERVAL_S).interval_s, 0,
                 NCCL_TIMEOUT_S)


def setting(scenario: Scenario, job: TrainingJob, rules: Rules,
            restart_s: float | None = None) -> Setting:
    """One run's numbers under `rules` (with `restart_s` instead of the scenario's, for the
    sensitivity table)."""
    return Setting(
        horizon_s=scenario.horizon_s,
        cadence=cadence(scenario, job, rules.interval_s),
        restart_s=scenario.restart_s if restart_s is None else restart_s,
        repair_s=scenario.repair_s,
        spares=rules.spares,
        crash_detection_s=CRASH_DETECTION_S,
        hang_detection_s=rules.hang_detection_s,
        kinds=TABLE_5,
    )
