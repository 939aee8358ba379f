"""A job as a trace records it, before the simulator turns it into a scheduler `Job`.

`duration_s` is the run time on the reference accelerator (the catalog's V100-16GB unless the
runtime model says otherwise) with the requested GPUs; `durations` optionally gives the
exclusive run time per accelerator type (Gavel's throughput table), which then wins.
`checkpoint_cost_s` is the seconds of training one checkpoint save blocks and
`checkpoint_interval_s` a fixed interval between saves (see suan.sim.runtime.checkpoint_plan).

The batch fields are those of a job spec (docs/simulator.md, "Batch columns"): `time_limit_s`
bounds each run; `dependencies` are (kind, job id) pairs, every one to hold before the job is
offered to the scheduler (`suan.jobs.batch_syntax.KINDS`); an array member has its
`array_id`, its `array_index` and the array's throttle `array_limit` (None: none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class TraceJob:
    """One job of a trace. Times in seconds from the trace start."""

    job_id: str
    submit_time: float
    duration_s: float
    num_gpus: int
    gpu_type: str | None = None
    user: str = ""
    queue: str = "default"
    priority: int = 0
    durations: Mapping[str, float] = field(default_factory=dict, hash=False, compare=False)
    series: str = ""
    checkpoint_cost_s: float | None = None
    checkpoint_interval_s: float | None = None
    time_limit_s: float | None = None
    dependencies: tuple[tuple[str, str], ...] = ()
    array_id: str = ""
    array_index: int | None = None
    array_limit: int | None = None

    @property
    def gpu_seconds(self) -> float:
        return self.duration_s * self.num_gpus


def replica_shape(num_gpus: int, node_devices: int) -> tuple[int, int]:
    """(replicas, devices per replica) for a gang of `num_gpus` on nodes of `node_devices`.

    A job that fits on one node is one replica; a larger one is split into the largest equal
    replicas that divide both its size and the node size (16 on 8-GPU nodes: 2x8; 12: 3x4),
    so that consolidated placement fills whole nodes where it can.
    """
    if num_gpus <= node_devices:
        return 1, num_gpus
    from math import gcd

    per = gcd(num_gpus, node_devices)
    return num_gpus // per, per


BURST_GAP_S = 60.0
"""Submissions of a queue at most this far apart, asking for as many GPUs, form one series."""
BURST_SPAN_S = 600.0
"""A series of submissions is cut into series of at most this span (a long sweep drifts)."""


def burst_series(jobs: Sequence[TraceJob], gap_s: float = BURST_GAP_S,
                 span_s: float = BURST_SPAN_S) -> list[TraceJob]:
    """The jobs (in submission order), each without a series given one from its submission
    burst: a job submitted within `gap_s` of the previous job of its queue, with as many GPUs,
    and within `span_s` of the first of that job's series, joins it; otherwise it starts one,
    named after itself.

    For traces that record no user or job name (Philly): jobs submitted together, by one
    script or sweep, need alike there (log10 of consecutive durations correlate at 0.8-0.9 in
    its busiest virtual clusters). Only submissions up to a job's own are used, so a live
    scheduler could do the same.
    """
    last: dict[str, tuple[float, int, str, float]] = {}
    out: list[TraceJob] = []
    for job in sorted(jobs, key=lambda j: j.submit_time):
        previous = last.get(job.queue)
        series, first = job.series, job.submit_time
        if not series:
            if (previous is not None and job.submit_time - previous[0] <= gap_s
                    and previous[1] == job.num_gpus and job.submit_time - previous[3] <= span_s):
                series, first = previous[2], previous[3]
            else:
                series = f"burst-{job.job_id}"
            job = replace(job, series=series)
        last[job.queue] = (job.submit_time, job.num_gpus, series, first)
        out.append(job)
    return out
