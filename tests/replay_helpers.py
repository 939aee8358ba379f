"""A control plane that runs trace jobs deterministically: the reconciler over a SQLite store
and the scripted executor (each job's ranks run for its trace duration), on a fake clock."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select

from suan.cluster.model import Cluster
from suan.control.auth import Identity
from suan.control.config import ControlConfig
from suan.control.jobs import placement_of, scheduler_job
from suan.control.leader import Lease
from suan.control.models import JobRow
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.exec import JobLaunch
from suan.exec.scripted import RankScript, ScriptedEngine, ScriptedExecutor
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec
from suan.jobs.spec import job_to_document, queue_to_document
from suan.sim.workload import TraceJob, replica_shape

ADMIN = Identity("admin", admin=True)
Decision = tuple[float, str, str, tuple[tuple[str, tuple[int, ...]], ...]]
"""(time, "start" | "preempt", job, ((node, devices), ...) where it starts)."""


def scheduler_job_of(trace: TraceJob, node_devices: int) -> Job:
    """The Job the simulator makes of `trace` on nodes of `node_devices` (no per-type speeds,
    no checkpoints), with a command so that the control plane can launch it."""
    replicas, per = replica_shape(trace.num_gpus, node_devices)
    return Job(
        trace.job_id, (ReplicaGroup(replicas=replicas, accelerators=per),), queue=trace.queue,
        user=trace.user, priority=trace.priority, series=trace.series, command=("train",),
    )


class _Placed(NamedTuple):
    """A row's placement column, as `placement_of` reads it."""

    placement: str | None


class Clock:
    """The replay's clock: the reconciler is told `now`, the scripted engine reads it here."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ControlPlane:
    """A reconciler under the `default` policy over a SQLite store in `home` and the scripted
    executor on `cluster`'s nodes; `queues` are defined (`default` aside) before any job.
    `decisions` collects the starts and preemptions it records, by trace job name."""

    def __init__(self, home: Path, cluster: Cluster, queues: Sequence[QueueSpec],
                 jobs: Sequence[TraceJob]):
        self.clock = Clock()
        self.node_devices = max(node.devices for node in cluster.nodes)
        self.seconds = {trace.job_id: trace.duration_s for trace in jobs}
        engine = ScriptedEngine(tuple(cluster.nodes), self._script, self.clock)
        self.executor = ScriptedExecutor(engine)
        self.store = Store.open(database_url(home))
        config = ControlConfig(home=home, simulated=True, policy="default")
        # the only server: a lease that outlasts the replay, taken at the first tick
        lease = Lease(self.store, ttl_s=3600.0)
        self.reconciler = Reconciler(self.store, self.executor, config, lease)
        self.home = home
        self.names: dict[str, str] = {}
        self.seen: dict[str, tuple[int, str]] = {}
        self.decisions: list[Decision] = []
        documents = [queue_to_document(q) for q in queues if q != DEFAULT_QUEUE]
        if documents:
            with self.store.session() as session:
                submit(session, ADMIN, "\n---\n".join(json.dumps(d) for d in documents), None,
                       home)

    def _script(self, launch: JobLaunch, rank: int, env: Mapping[str, str]) -> RankScript:
        return RankScript(self.seconds[self.names[launch.job_id]])

    def submit(self, trace: TraceJob) -> str:
        """Submit `trace` as the simulator's Job, submitted at its trace time; its job id."""
        document = json.dumps(job_to_document(scheduler_job_of(trace, self.node_devices)))
        with self.store.session() as session:
            job_id = submit(session, ADMIN, document, None, self.home).jobs[0]["id"]
            session.get(JobRow, job_id).submit_time = trace.submit_time
        self.names[job_id] = trace.job_id
        return job_id

    def tick(self, now: float) -> None:
        """One tick at `now`, and a second one at once if it preempted: the victims' ranks
        have stopped by then (the scripted executor stops them at once) and the start that
        waited for them is carried out."""
        self.clock.now = now
        self._tick(now)
        if self.reconciler.last_decisions and self.reconciler.last_decisions.preemptions:
            self._tick(now)

    def _tick(self, now: float) -> None:
        """A tick with a scheduling pass (`wake`), then the decisions it made recorded."""
        self.reconciler.wake()
        self.reconciler.tick(now=now)
        self._record(now)

    def _record(self, now: float) -> None:
        columns = (JobRow.id, JobRow.attempt, JobRow.state, JobRow.start_time, JobRow.placement)
        with self.store.session() as session:
            rows = session.execute(select(*columns)).all()
        for job_id, attempt, state, start_time, placement in rows:
            before = self.seen.get(job_id, (0, "pending"))
            name = self.names[job_id]
            if attempt > before[0]:
                where = tuple((p.node, p.devices) for p in placement_of(_Placed(placement)))
                self.decisions.append((start_time, "start", name, where))
            if state == "preempted" and before[1] != "preempted":
                self.decisions.append((now, "preempt", name, ()))
            self.seen[job_id] = (attempt, state)

    def finished(self) -> bool:
        """Whether every submitted job has succeeded."""
        return len(self.seen) == len(self.names) and all(
            state == "succeeded" for _, state in self.seen.values())

    def rows(self) -> dict[str, JobRow]:
        """Every job row, by trace job name."""
        with self.store.session() as session:
            rows = list(session.scalars(select(JobRow)))
            session.expunge_all()
        return {self.names[row.id]: row for row in rows}

    def jobs(self) -> dict[str, Job]:
        """The scheduler's Job of every job, by trace job name."""
        return {name: scheduler_job(row) for name, row in self.rows().items()}

    def run(self, jobs: Sequence[TraceJob], times: Sequence[float] = ()) -> None:
        """Submit `jobs` at their submit times and tick at each of `times`, at each submit
        time and whenever a scripted rank ends, until every job has succeeded."""
        arrivals = sorted(jobs, key=lambda trace: trace.submit_time)
        upcoming = sorted(set(times) | {trace.submit_time for trace in jobs})
        while upcoming or not self.finished():
            ends = self.executor.next_end()
            candidates = [t for t in (upcoming[0] if upcoming else None, ends) if t is not None]
            assert candidates, "jobs remain but nothing will happen"
            now = min(candidates)
            while upcoming and upcoming[0] <= now:
                upcoming.pop(0)
            while arrivals and arrivals[0].submit_time <= now:
                self.submit(arrivals.pop(0))
            self.tick(now)
