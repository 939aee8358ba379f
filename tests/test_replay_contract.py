"""One scheduler for the live cluster and the replay: a recorded job stream, run through the
control plane's reconciler (SQLite store, the scripted executor on a fake clock) and through
the simulator, gets the same decisions: which job starts when, on which nodes and devices, and
which jobs are preempted when.

The stream is generated with a fixed seed: 90 jobs over three queues (one with a guarantee
that reclaims, high-priority jobs that preempt by priority, series), durations from a minute
to three hours, on 4 nodes of 8 devices under `default`, which learns its service classes
from the jobs that finish (more than 50 in one queue, so that its own classes replace the LAS
fallback during the replay) and time-shares inside a queue.

Two things differ between the two by design, and the timeline removes them:
- the reconciler looks at the world only when it ticks, the simulator at every event. The
  reconciler ticks at every time the simulator handled an event (arrivals, finishes, wake-ups
  at service-class bounds) and whenever a scripted rank ends;
- a preempted job's devices are free for the reconciler only once its ranks have stopped
  (the executor reports it at the next poll). Where a tick preempts, the reconciler ticks
  again at the same time, and the start that waited for the victim happens then.
Jobs are not checkpointed (`checkpoint_interval_s` None): a preempted job runs again from the
start in both, as the scripted executor runs every launch for the job's whole duration.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from replay_helpers import ControlPlane, Decision, scheduler_job_of

from suan.cluster.generate import cluster_from_shorthand
from suan.cluster.model import Cluster
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec
from suan.sim import SimConfig, TraceJob
from suan.sim.runtime import RuntimeModel
from suan.sim.simulator import Simulator

SEED = 20261205
JOBS = 90
NODE_DEVICES = 8
QUEUES = (
    QueueSpec("batch"),
    QueueSpec("prod", guaranteed={"accelerators": 16}),
    QueueSpec("research"),
    DEFAULT_QUEUE,
)
"""In the order the control plane lists them (defined ones by name, then `default`)."""


def job_stream(seed: int = SEED, count: int = JOBS) -> list[TraceJob]:
    """`count` jobs, one every 90 s on average (whole seconds, no two at once), log-uniform
    durations from 1 minute to 3 hours, 1 to 16 devices; 70 % in `research` (each opens a
    new series with chance 1/5 and belongs to the latest series with chance 1/2), 15 % in
    `prod` (about a third of them high priority), 15 % in `batch`."""
    rng = random.Random(seed)
    jobs, now, series = [], 0.0, ""
    for index in range(count):
        now += 1 + math.floor(rng.expovariate(1 / 90))
        queue = rng.choices(("research", "prod", "batch"), weights=(70, 15, 15))[0]
        duration = float(round(math.exp(rng.uniform(math.log(60), math.log(3 * 3600)))))
        if queue == "research" and rng.random() < 0.2:
            series = f"sweep-{index:03d}"
        jobs.append(TraceJob(
            job_id=f"job-{index:03d}", submit_time=now, duration_s=duration,
            num_gpus=rng.choice((1, 1, 2, 4, 8, 8, 16)), user=f"user{rng.randrange(4)}",
            queue=queue, priority=100 if queue == "prod" and rng.random() < 0.35 else 0,
            series=series if queue == "research" and rng.random() < 0.5 else "",
        ))
    return jobs


def cluster() -> Cluster:
    return cluster_from_shorthand(f"4x{NODE_DEVICES}xV100")


def simulated(jobs: list[TraceJob]) -> tuple[list[Decision], list[float], Simulator]:
    """The simulator's decisions, the times of its scheduling cycles, and the simulator."""
    config = SimConfig(policy="default", tick_s=None, queues=QUEUES,
                       runtime=RuntimeModel(checkpoint_interval_s=None))
    simulator = Simulator(jobs, cluster(), config)
    simulator.journal = []
    simulator.run()
    decisions = [
        (when, kind, name, tuple((r.node, r.devices) for r in replicas))
        for when, kind, name, replicas in simulator.journal if kind != "cycle"
    ]
    cycles = sorted({when for when, kind, *_ in simulator.journal if kind == "cycle"})
    return decisions, cycles, simulator


def replayed(home: Path, jobs: list[TraceJob], times: list[float]) -> ControlPlane:
    """Run `jobs` through the control plane, ticking at each of `times` (and at each submit
    time and whenever a scripted rank ends)."""
    plane = ControlPlane(home, cluster(), QUEUES, jobs)
    try:
        plane.run(jobs, times)
    finally:
        plane.store.close()
    return plane


@pytest.fixture(scope="module")
def stream() -> list[TraceJob]:
    return job_stream()


@pytest.fixture(scope="module")
def simulation(stream) -> tuple[list[Decision], list[float], Simulator]:
    return simulated(stream)


def test_the_stream_exercises_what_it_should(stream, simulation):
    decisions, _, simulator = simulation
    preempted = {name for _, kind, name, _ in decisions if kind == "preempt"}
    by_name = {trace.job_id: trace for trace in stream}
    kinds = {(by_name[name].queue, by_name[name].priority) for name in preempted}
    assert len(preempted) >= 5
    assert ("research", 0) in kinds and len(kinds) >= 2
    assert sum(trace.queue == "research" for trace in stream) > 50
    assert simulator.history is not None and "research" in simulator.history.classes.per_queue
    assert len({trace.series for trace in stream if trace.series}) >= 5


def test_the_control_plane_submits_the_simulators_jobs(stream, tmp_path):
    plane = ControlPlane(tmp_path, cluster(), QUEUES, stream)
    for trace in stream[:10]:
        plane.submit(trace)
    jobs = plane.jobs()
    plane.store.close()
    for name, job in jobs.items():
        trace = next(t for t in stream if t.job_id == name)
        expected = scheduler_job_of(trace, NODE_DEVICES)
        assert job.groups == expected.groups and job.series == expected.series
        assert (job.queue, job.user, job.priority, job.submit_time) == (
            trace.queue, trace.user, trace.priority, trace.submit_time)
        assert job.checkpoint_interval_s is None and job.runtime_estimate_s is None


def test_reconciler_and_simulator_decide_the_same(stream, simulation, tmp_path):
    expected, times, simulator = simulation
    plane = replayed(tmp_path, stream, times)
    assert plane.finished()
    assert simulator.history is not None and plane.reconciler.service is not None
    assert plane.reconciler.service.classes == simulator.history.classes
    got, expected = sorted(plane.decisions), sorted(expected)
    first = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                 None)
    context = "" if first is None else f"first difference at {first}: {got[first]} vs " \
        f"{expected[first]}"
    assert len(got) == len(expected), context
    assert got == expected, context
