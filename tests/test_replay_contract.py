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

import json
import math
import random
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import select

from suan.cluster.generate import cluster_from_shorthand
from suan.cluster.model import Cluster
from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.jobs import placement_of, scheduler_job
from suan.control.models import JobRow
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec import JobLaunch
from suan.exec.scripted import RankScript, ScriptedEngine, ScriptedExecutor
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec
from suan.jobs.spec import job_to_document, queue_to_document
from suan.sim import SimConfig, TraceJob
from suan.sim.runtime import RuntimeModel
from suan.sim.simulator import Simulator
from suan.sim.workload import replica_shape

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

Decision = tuple[float, str, str, tuple[tuple[str, tuple[int, ...]], ...]]
"""(time, "start" | "preempt", job, ((node, devices), ...) where it starts)."""


def job_stream(seed: int = SEED, count: int = JOBS) -> list[TraceJob]:
    """`count` jobs, one every 90 s on average (whole seconds, no two at once), log-uniform
    durations from 1 minute to 3 hours, 1 to 16 devices; 70 % in `research` (every fifth
    job there starts a series of up to four), 15 % in `prod` (a third of them high priority),
    15 % in `batch`."""
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


def scheduler_job_of(trace: TraceJob) -> Job:
    """The Job the simulator makes of `trace` (on nodes of NODE_DEVICES, no per-type speeds,
    no checkpoints), with a command so that the control plane can launch it."""
    replicas, per = replica_shape(trace.num_gpus, NODE_DEVICES)
    return Job(
        trace.job_id, (ReplicaGroup(replicas=replicas, accelerators=per),), queue=trace.queue,
        user=trace.user, priority=trace.priority, series=trace.series, command=("train",),
    )


def simulated(jobs: list[TraceJob]) -> tuple[list[Decision], list[float]]:
    """The simulator's decisions, and the times of its scheduling cycles."""
    config = SimConfig(policy="default", tick_s=None, queues=QUEUES,
                       runtime=RuntimeModel(checkpoint_interval_s=None))
    simulator = Simulator(jobs, cluster(), config)
    simulator.journal = []
    simulator.run()
    decisions = [
        (when, kind, name, tuple((r.node, r.devices) for r in replicas))
        for when, kind, name, replicas in simulator.journal if kind != "cycle"
    ]
    return decisions, sorted({when for when, kind, *_ in simulator.journal if kind == "cycle"})


class Clock:
    """The replay's clock: the reconciler is told `now`, the scripted engine reads it here."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ControlPlane:
    """A reconciler over a SQLite store and the scripted engine, on a fake clock."""

    def __init__(self, home: Path, jobs: list[TraceJob]):
        self.clock = Clock()
        self.seconds = {trace.job_id: trace.duration_s for trace in jobs}
        engine = ScriptedEngine(tuple(cluster().nodes), self._script, self.clock)
        self.executor = ScriptedExecutor(engine)
        self.store = Store.open(database_url(home))
        config = ControlConfig(home=home, simulated=True, policy="default")
        self.reconciler = Reconciler(self.store, self.executor, config)
        self.home = home
        self.names: dict[str, str] = {}
        self.seen: dict[str, tuple[int, str]] = {}
        self.decisions: list[Decision] = []
        admin = Identity("admin", admin=True)
        with self.store.session() as session:
            documents = [queue_to_document(q) for q in QUEUES if q is not DEFAULT_QUEUE]
            submit(session, admin, "\n---\n".join(json.dumps(d) for d in documents), None, home)

    def _script(self, launch: JobLaunch, rank: int, env: Mapping[str, str]) -> RankScript:
        return RankScript(self.seconds[self.names[launch.job_id]])

    def submit(self, trace: TraceJob) -> None:
        """Submit `trace` as the simulator's Job, submitted at its trace time."""
        document = json.dumps(job_to_document(scheduler_job_of(trace)))
        with self.store.session() as session:
            job_id = submit(session, Identity("admin", admin=True), document, None,
                            self.home).jobs[0]["id"]
            session.get(JobRow, job_id).submit_time = trace.submit_time
        self.names[job_id] = trace.job_id

    def tick(self, now: float) -> None:
        """One tick at `now`, and a second one at once if it preempted (see module doc)."""
        self.clock.now = now
        self.reconciler.wake()
        self.reconciler.tick(now=now)
        self._record(now)
        if self.reconciler.last_decisions and self.reconciler.last_decisions.preemptions:
            self.reconciler.wake()
            self.reconciler.tick(now=now)
            self._record(now)

    def _record(self, now: float) -> None:
        with self.store.session() as session:
            for row in session.scalars(select(JobRow)):
                before = self.seen.get(row.id, (0, "pending"))
                name = self.names[row.id]
                if row.attempt > before[0]:
                    where = tuple((p.node, p.devices) for p in placement_of(row))
                    self.decisions.append((row.start_time, "start", name, where))
                if row.state == "preempted" and before[1] != "preempted":
                    self.decisions.append((now, "preempt", name, ()))
                self.seen[row.id] = (row.attempt, row.state)

    def finished(self) -> bool:
        return len(self.seen) == len(self.names) and all(
            state == "succeeded" for _, state in self.seen.values())

    def jobs(self) -> dict[str, Job]:
        with self.store.session() as session:
            return {self.names[row.id]: scheduler_job(row)
                    for row in session.scalars(select(JobRow))}


def replayed(home: Path, jobs: list[TraceJob], times: list[float]) -> ControlPlane:
    """Run `jobs` through the control plane, ticking at each of `times` and whenever a
    scripted rank ends, until every job has succeeded."""
    plane = ControlPlane(home, jobs)
    arrivals = sorted(jobs, key=lambda trace: trace.submit_time)
    upcoming = sorted(set(times) | {trace.submit_time for trace in jobs})
    try:
        while upcoming or not plane.finished():
            ends = plane.executor.next_end()
            candidates = [t for t in (upcoming[0] if upcoming else None, ends) if t is not None]
            assert candidates, "jobs remain but nothing will happen"
            now = min(candidates)
            while upcoming and upcoming[0] <= now:
                upcoming.pop(0)
            while arrivals and arrivals[0].submit_time <= now:
                plane.submit(arrivals.pop(0))
            plane.tick(now)
    finally:
        plane.store.close()
    return plane


@pytest.fixture(scope="module")
def stream() -> list[TraceJob]:
    return job_stream()


def test_the_stream_exercises_what_it_should(stream):
    decisions, _ = simulated(stream)
    preempted = {name for _, kind, name, _ in decisions if kind == "preempt"}
    by_name = {trace.job_id: trace for trace in stream}
    kinds = {(by_name[name].queue, by_name[name].priority) for name in preempted}
    assert len(preempted) >= 5
    assert ("research", 0) in kinds and len(kinds) >= 2
    assert sum(trace.queue == "research" for trace in stream) > 50
    assert len({trace.series for trace in stream if trace.series}) >= 5


def test_the_control_plane_submits_the_simulators_jobs(stream, tmp_path):
    plane = ControlPlane(tmp_path, stream)
    for trace in stream[:10]:
        plane.submit(trace)
    plane.store.close()
    for name, job in plane.jobs().items():
        trace = next(t for t in stream if t.job_id == name)
        expected = scheduler_job_of(trace)
        assert job.groups == expected.groups and job.series == expected.series
        assert (job.queue, job.user, job.priority, job.submit_time) == (
            trace.queue, trace.user, trace.priority, trace.submit_time)
        assert job.checkpoint_interval_s is None and job.runtime_estimate_s is None


def test_reconciler_and_simulator_decide_the_same(stream, tmp_path):
    expected, times = simulated(stream)
    plane = replayed(tmp_path, stream, times)
    assert plane.finished()
    got, expected = sorted(plane.decisions), sorted(expected)
    first = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                 None)
    context = "" if first is None else f"first difference at {first}: {got[first]} vs " \
        f"{expected[first]}"
    assert len(got) == len(expected), context
    assert got == expected, context
