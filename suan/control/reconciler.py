"""The reconciler: the one loop that moves jobs through their lifecycle.

Each tick it (1) polls the executor and settles jobs whose ranks ended (gang failure: stop the
other ranks, restart from the checkpoint with backoff, or fail), (2) carries out cancel
requests, (3) builds a Snapshot from the store, calls the scheduler for the waiting jobs,
records its decisions (pending reasons, preemptions, placements) and (4) launches the started
jobs through the executor. REST handlers only write requests and wake the loop (`wake()`).

A job is launched in two commits: first `scheduled` with its new attempt number, then, once its
ranks run, `running` with their pids. A server that crashes between the two finds the ranks of
that attempt on disk (`executor.discover`) when it restarts, so no attempt runs twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from suan.cluster.model import Cluster, NodeHealth
from suan.cluster.snapshot import Allocation, ReplicaPlacement, Snapshot
from suan.control.batch_gate import array_environment, gate
from suan.control.checkpoint_advice import launch_environment
from suan.control.config import ControlConfig
from suan.control.drain import Drains
from suan.control.gang_watch import GangWatch
from suan.control.inventory import ClusterInventory
from suan.control.jobs import (
    known_job,
    load_queues,
    placement_json,
    placement_of,
    scheduler_job,
)
from suan.control.leader import Fenced, Lease
from suan.control.lifecycle import (
    JobState,
    after_exit,
    check_transition,
    gang_restart_delay_s,
    restart_backoff_s,
)
from suan.control.metrics import ControlMetrics
from suan.control.models import EventRow, JobRow, RankRow
from suan.control.service import end_run, load_history, served_job, with_attained
from suan.control.snapshot import Captures, CycleRecord
from suan.control.store import Store, add_event
from suan.control.time_limits import overrun
from suan.errors import SuanError
from suan.exec import EngineError, Executor, JobLaunch, JobStatus, RankHandle
from suan.exec.processes import processes, with_assigned_devices
from suan.jobs.model import Job
from suan.plan.jobs import AdviceMemo, cluster_types
from suan.sched import CarriedState, collector_paused, schedule
from suan.sched.decisions import Decisions, Start, WaitCode
from suan.sched.service import ServiceHistory
from suan.sched.service_feed import record_finish, record_stop, relearn

log = logging.getLogger("suan.reconciler")
LIVE = tuple(s.value for s in JobState if not s.final)
API_YIELD = 3
"""After a tick that the API woke, the reconciler pauses this many times the tick's duration."""
IDLE_PASSES = 4
"""With nothing new, a scheduling pass runs again after this many times its own duration
(a tick later when that is sooner)."""
HOLDING = tuple(s.value for s in JobState if s.holds_devices)
WAITING = tuple(s.value for s in JobState if s.waiting)
STOPPED_UNFINISHED = (JobState.PREEMPTED, JobState.RESTARTING, JobState.PENDING)
"""Where a run that ends unfinished leaves its job: waiting to run again."""


class Queued(NamedTuple):
    """What the scheduling pass reads of a waiting job: scheduler_job's inputs, `_ready`'s,
    and its reason."""

    id: str
    user: str
    queue: str
    submit_time: float
    state: str
    not_before: float | None
    cancel_requested: bool
    restarts: int
    reason: str
    reason_code: str
    attained_s: float
    held_by: str
    waits_for: str | None
    array_id: str | None
    array_index: int | None
    array_limit: int | None


class _WithDocument(NamedTuple):
    """A queued job and its spec document: what scheduler_job reads."""

    row: Queued
    document: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


class Reconciler:
    """Drives jobs from the store through the scheduler and the executor (see module doc)."""

    def __init__(
        self, store: Store, executor: Executor, config: ControlConfig, lease: Lease | None = None
    ):
        self.store = store
        self.lease = lease or Lease(store)
        self.executor = executor
        self.config = config
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._exited = threading.Event()
        self._changed = True
        self._last_pass = 0.0
        self._pass_s = 0.0
        self._thread: threading.Thread | None = None
        self.last_decisions: Decisions | None = None
        self.carried = CarriedState()
        self._advice = AdviceMemo()  # planner advice of the waiting jobs, kept between passes
        """What the scheduler carries from one cycle to the next."""
        self.ticks = 0
        self.service: ServiceHistory | None = None
        self.inventory = ClusterInventory(executor, config.inventory_s)
        self.drains = Drains(self.inventory)
        self._engine_said: dict[str, str] = {}
        self._next_due: float | None = None
        self.captures = Captures()
        self._claims: dict[str, Start] = {}
        self.gang_watch = GangWatch(executor, config)  # progress, stragglers, hangs
        self.metrics = ControlMetrics()  # what /metrics counts (suan.control.metrics)

    # -- the loop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Tick in a background thread while this server leads (recovering the ranks of the
        previous leader each time it takes over); stand by otherwise."""
        watch_exits = getattr(self.executor, "on_exit", None)
        if watch_exits is not None:
            watch_exits(self._rank_exited)
        self._thread = threading.Thread(target=self._run, name="suan-reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._exited.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.lease.release()

    def wake(self) -> None:
        """Run the next tick now (a job was submitted or cancelled)."""
        self._changed = True
        self._wake.set()

    def _rank_exited(self) -> None:
        """A rank exited: tick now (devices may be free), without the pause of `_run`."""
        self._exited.set()
        self.wake()

    def _run(self) -> None:
        leading = False
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                leading = self._lead(leading)
            except Fenced as exc:
                log.warning("%s", exc)
                leading = self._stand_by()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("reconciler tick failed")
            busy = time.monotonic() - began
            pause = self._pause(time.time()) if leading else self.config.tick_s * 4
            woken = self._wake.wait(min(pause, self.lease.ttl_s / 5))
            self._wake.clear()
            if woken and not self._exited.is_set():
                # Woken by the API (a submit, a cancel): under a stream of requests, leave
                # them three times as long as the tick took, so that ticks (one CPU-bound
                # thread over the whole queue) take at most a quarter of the interpreter from
                # the request threads. A rank's exit ends the wait: devices may be free.
                self._exited.wait(min(API_YIELD * busy, self.lease.ttl_s / 5))
            self._exited.clear()

    def _lead(self, leading: bool) -> bool:
        """Renew (or take) the lease and tick; stand by when another server leads."""
        if not self.lease.hold():
            return self._stand_by() if leading else False
        if not leading:
            log.info("leading the control plane (lease epoch %d)", self.lease.epoch)
            self.recover()
        self.tick()
        return True

    def _stand_by(self) -> bool:
        """Stop acting: forget every tracked launch (the new leader adopts them)."""
        for job_id in list(getattr(self.executor, "tracked", set)()):
            self.executor.forget(job_id)
        return False

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """A store session whose writes count only while this server leads (fencing)."""
        if not self.lease.fresh() and not self.lease.hold():
            raise Fenced("another server holds the lease; this server stands by")
        with self.store.session() as session:
            self.lease.check(session)
            yield session

    def _pause(self, now: float) -> float:
        """Until the next tick: `tick_s`, or less when a job's backoff ends sooner."""
        if self._next_due is None:
            return self.config.tick_s
        return min(self.config.tick_s, max(0.0, self._next_due - now))

    def tick(self, now: float | None = None) -> None:
        """One pass: observe ranks, apply cancels, schedule (`_schedule_due`; or, once their
        victims have stopped, carry out the starts the last pass left waiting, `_claimed`),
        launch."""
        now = time.time() if now is None else now
        statuses = self.executor.poll()
        with self._session() as session:
            live = self._acting(session)
            before = [(r.state, r.stop_target, r.placement) for r in live]
            if self.drains.tick(session, live, now):  # cordons and drains (suan.control.drain)
                self._changed = True
            for row in live:
                if JobState(row.state).holds_devices:
                    self._observe(session, row, statuses.get(row.id), now)
                    self._stop_overrun(session, row, now)
            for row in live:
                if row.cancel_requested:
                    self._cancel(session, row, now)
            self.gang_watch.watch(session, live, statuses, now)
            if before != [(r.state, r.stop_target, r.placement) for r in live]:
                self._changed = True
        starts = self._claimed(now) if self._claims else []
        if not starts and self._schedule_due(now):
            began = time.monotonic()
            self._changed = False
            with self._session() as session, collector_paused():
                starts = self._schedule(session, now)
            self._last_pass, self._pass_s = time.monotonic(), time.monotonic() - began
            self.metrics.scheduling_pass(self._pass_s, len(starts))
        for row_id, start in starts:
            self._launch(row_id, start, now)
        self.ticks += 1

    def _claimed(self, now: float) -> list[tuple[str, Start]]:
        """The starts that the last pass placed on devices of jobs it preempted, now that those
        have stopped: marked `scheduled` there, as that pass decided (its preemptions and starts
        are one decision, so the devices go to the job they were taken for). A tick that
        carries them out leaves the next scheduling pass to the next tick."""
        carried = []
        with self._session() as session:
            busy = _busy_devices(self._holding(session))
            cluster = self.inventory.current()
            for job_id, start in list(self._claims.items()):
                row = session.get(JobRow, job_id)
                if row is not None and self._ready(row, now) and _overlap(start.replicas, busy):
                    continue  # its victims are still stopping
                del self._claims[job_id]
                if row is None or not self._ready(row, now):
                    continue
                if any(replica.node not in cluster.index
                       or not cluster.node(replica.node).health.schedulable
                       for replica in start.replicas):
                    continue  # its place is gone or cordoned: the next pass places it again
                self._mark_scheduled(session, row, start, cluster, now)
                carried.append((row.id, start))
        return carried

    def _due_by(self, when: float) -> None:
        """Run a scheduling pass no later than `when` (a backoff set after the last pass)."""
        self._next_due = when if self._next_due is None else min(self._next_due, when)

    def _schedule_due(self, now: float) -> bool:
        """Whether this tick runs the scheduling pass: when something changed (a wake-up from
        the API or an exit, a job that moved), a backoff ended, or, with nothing new, once
        `IDLE_PASSES` times the last pass's duration has gone by, so that an idle reconciler
        over a long queue spends at most a fraction of a core (over a short one, whose pass
        takes milliseconds, every tick still runs one)."""
        if self._changed or (self._next_due is not None and now >= self._next_due):
            return True
        return time.monotonic() - self._last_pass >= IDLE_PASSES * self._pass_s

    @staticmethod
    def _rows(session: Session, *where: Any) -> list[JobRow]:
        """The jobs that meet every condition in `where`, oldest submission first."""
        query = select(JobRow).where(*where).order_by(JobRow.submit_time)
        return list(session.scalars(query))

    @classmethod
    def _live(cls, session: Session) -> list[JobRow]:
        return cls._rows(session, JobRow.state.in_(LIVE))

    @classmethod
    def _acting(cls, session: Session) -> list[JobRow]:
        """The live jobs a tick observes or cancels: those holding devices and those with a
        cancel request (not the whole queue, which only the scheduler reads)."""
        return cls._rows(
            session,
            JobRow.state.in_(LIVE),
            JobRow.state.in_(HOLDING) | JobRow.cancel_requested.is_(True),
        )

    @classmethod
    def _holding(cls, session: Session) -> list[JobRow]:
        return cls._rows(session, JobRow.state.in_(HOLDING))

    @staticmethod
    def _queued(session: Session) -> list[Queued]:
        """Every waiting job, as plain tuples: a tick reads them all, and building an ORM
        object per row cost more than scheduling it (an UPDATE writes what changes)."""
        columns = [getattr(JobRow, name) for name in Queued._fields]
        query = select(*columns).where(JobRow.state.in_(WAITING)).order_by(JobRow.submit_time)
        rows = session.connection().execute(query)  # Core rows: a third cheaper than the ORM's
        return [Queued._make(row) for row in rows]

    @staticmethod
    def _scheduler_jobs(session: Session, rows: list[Queued]) -> list[Job]:
        """The scheduler's Job of each row: kept ones as they are, the documents of the others
        read (a tick reads each spec once, not every tick)."""
        jobs = [known_job(row) for row in rows]
        missing = [row for row, job in zip(rows, jobs, strict=True) if job is None]
        documents: dict[str, str] = {}
        for at in range(0, len(missing), 500):
            ids = [row.id for row in missing[at : at + 500]]
            found = session.execute(select(JobRow.id, JobRow.document).where(JobRow.id.in_(ids)))
            documents.update((job_id, text) for job_id, text in found)
        return [
            with_attained(job or scheduler_job(_WithDocument(row, documents[row.id])),
                          row.attained_s)
            for row, job in zip(rows, jobs, strict=True)
        ]

    # -- recovery ----------------------------------------------------------------------------
    def recover(self) -> None:
        """Re-adopt the ranks of jobs that hold devices; settle launches a crash cut short."""
        with self._session() as session:
            for row in self._live(session):
                if row.state == JobState.RUNNING:
                    self.executor.adopt(_handles(session, row))
                elif row.state == JobState.SCHEDULED:
                    self._recover_launch(session, row)

    def _recover_launch(self, session: Session, row: JobRow) -> None:
        """A launch the server's crash cut: adopt it when every rank runs; otherwise stop the
        ranks it finds (by pid file, group or tag) and put the job back in the queue without
        counting a restart: the crash was not the job's failure."""
        ranks = processes(placement_of(row), scheduler_job(row).processes)
        found = [
            h if h.devices or h.rank >= len(ranks) else replace(h, devices=ranks[h.rank].devices)
            for h in self.executor.discover(row.id, row.attempt)
        ]
        expected = len(ranks)
        if found:
            self.executor.adopt(found)
        if found and len(found) == expected:
            _record_ranks(session, found)
            self._transition(
                session,
                row,
                JobState.RUNNING,
                "recovered",
                f"{expected} ranks of attempt {row.attempt} found after a restart",
            )
            return
        row.stop_target = JobState.PENDING.value
        row.stop_reason = (
            f"the server stopped while launching attempt {row.attempt} "
            f"({len(found)} of {expected} ranks had started)"
        )
        if found:
            self.executor.stop(row.id, 0.0)

    # -- observing ranks ---------------------------------------------------------------------
    def _observe(self, session: Session, row: JobRow, status: JobStatus | None, now: float) -> None:
        if status is None:  # nothing runs for it: a launch that never happened, or lost ranks
            self._settle_lost(session, row, now)
            return
        _record_exit_codes(session, row, status)
        self._record_engine_view(session, row, status)
        if status.stopping or row.stop_target is not None:
            if status.all_exited:
                self._finish_stop(session, row, now)
            elif not status.stopping:
                self.executor.stop(row.id, self.config.stop_grace_s)
            return
        failure = status.first_failure
        lost = self._lost_node(row)
        if failure is not None:
            self._gang_failed(session, row, failure.rank, failure.exit_code, status)
        elif lost:
            self._gang_failed(session, row, lost[0], None, status, lost[1])
        elif status.all_exited:
            self.executor.forget(row.id)
            job = scheduler_job(row)
            target = after_exit(job.restart_policy, True, row.restarts, job.max_restarts)
            self._settle(session, row, target, now, 0, "all ranks exited with code 0")

    def _stop_overrun(self, session: Session, row: JobRow, now: float) -> None:
        """Stop a run past its time limit; it ends `timeout` (`suan.control.time_limits`)."""
        if not JobState(row.state).holds_devices or row.stop_target is not None:
            return
        why = overrun(scheduler_job(row), row.start_time, now)
        if why is None:
            return
        row.stop_target, row.stop_reason = JobState.TIMEOUT.value, why
        grace = self.config.stop_grace_s
        add_event(session, row.id, "stopping",
                  f"{why}: SIGTERM to every rank, SIGKILL after {grace:g}s")
        self.executor.stop(row.id, grace)

    def _record_engine_view(self, session: Session, row: JobRow, status: JobStatus) -> None:
        """Devices the engine picked itself become the placement of record; a new word from
        the engine on the launch becomes an event."""
        if status.message and self._engine_said.get(row.id) != status.message:
            self._engine_said[row.id] = status.message
            add_event(session, row.id, "engine", status.message)
        given = {r.rank: r.devices for r in status.ranks if r.devices is not None}
        if not given or not row.placement:
            return
        mode = scheduler_job(row).processes
        current = placement_of(row)
        updated = with_assigned_devices(current, mode, given)
        if updated == current:
            return
        document = json.loads(row.placement)
        for item, replica in zip(document["replicas"], updated, strict=True):
            item["devices"] = list(replica.devices)
        row.placement = json.dumps(document)
        before, after = processes(current, mode), processes(updated, mode)
        query = select(RankRow).where(RankRow.job_id == row.id, RankRow.attempt == row.attempt)
        for rank_row in session.scalars(query):
            if rank_row.rank < len(after):
                rank_row.devices = ",".join(str(d) for d in after[rank_row.rank].devices)
        words = "; ".join(
            f"rank {rank}: {list(new.devices)}"
            for rank, (old, new) in enumerate(zip(before, after, strict=True))
            if old.devices != new.devices
        )
        add_event(session, row.id, "placement", f"devices the engine assigned: {words}")

    def _settle_lost(self, session: Session, row: JobRow, now: float) -> None:
        target = JobState(row.stop_target) if row.stop_target else None
        if target is None:
            job = scheduler_job(row)
            target = after_exit(job.restart_policy, False, row.restarts, job.max_restarts)
        self._settle(session, row, target, now, None, row.stop_reason or "ranks lost")

    def _lost_node(self, row: JobRow) -> tuple[int, str] | None:
        """(a rank, why) when a node under the job is down by the engine's last word."""
        cluster = self.inventory.current()
        for rank, replica in enumerate(placement_of(row)):
            if replica.node in cluster.index:
                node = cluster.node(replica.node)
                if node.health == NodeHealth.DOWN:
                    return rank, f"node {node.name} is down ({node.health_reason or 'no reason'})"
        return None

    def _gang_failed(
        self,
        session: Session,
        row: JobRow,
        rank: int,
        code: int | None,
        status: JobStatus,
        why: str = "",
    ) -> None:
        job = scheduler_job(row)
        how = f"exited with code {code}" if code is not None else "vanished"
        message = why or f"rank {rank} {how}"
        if status.message and "memory" in status.message:
            message += f": {status.message}"
        add_event(session, row.id, "rank-failed", message)
        row.exit_code = code
        target = after_exit(job.restart_policy, False, row.restarts, job.max_restarts)
        row.stop_target = target.value
        row.stop_reason = message
        if status.all_exited:
            return
        add_event(session, row.id, "stopping", f"stopping the other ranks ({message})")
        self.executor.stop(row.id, self.config.stop_grace_s)

    def _finish_stop(self, session: Session, row: JobRow, now: float) -> None:
        self.executor.forget(row.id)
        target = JobState(row.stop_target or JobState.FAILED)
        self._settle(session, row, target, now, row.exit_code, row.stop_reason)

    def _settle(
        self,
        session: Session,
        row: JobRow,
        target: JobState,
        now: float,
        code: int | None,
        why: str,
    ) -> None:
        """Move a job whose ranks are all gone to `target`, freeing its devices."""
        end_run(row, now)
        self.metrics.run_ended(target, why)
        if target in STOPPED_UNFINISHED and self.service is not None:
            record_stop(self.service, scheduler_job(row), row.attained_s)
        self.executor.forget(row.id)
        self._engine_said.pop(row.id, None)
        row.placement = None
        row.stop_target = None
        row.stop_reason = ""
        row.exit_code = code
        if target == JobState.RESTARTING:
            row.restarts += 1
            job = scheduler_job(row)
            ran = now - (row.start_time or now)
            delay = gang_restart_delay_s(row.restarts, ran, self.config.restart_backoff_s)
            row.not_before = now + delay
            row.reason = f"restart {row.restarts}/{job.max_restarts} in {delay:.1f}s after: {why}"
            row.reason_code = WaitCode.BACKOFF.value
            self._transition(session, row, target, "restarting", row.reason)
            return
        if target == JobState.PENDING:  # requeued: no restart counted, no backoff
            row.start_time = None
            row.reason, row.reason_code = f"requeued: {why}", WaitCode.REQUEUED.value
            self._transition(session, row, target, "requeued", row.reason)
            return
        if target == JobState.PREEMPTED:
            row.reason, row.reason_code = why, WaitCode.PREEMPTED.value
        else:
            row.end_time = now
            row.reason, row.reason_code = why, ""
            if target == JobState.SUCCEEDED and self.service is not None:
                record_finish(self.service, scheduler_job(row), row.attained_s)
        self._transition(session, row, target, target.value, why)

    # -- cancel ------------------------------------------------------------------------------
    def _cancel(self, session: Session, row: JobRow, now: float) -> None:
        state = JobState(row.state)
        if state.waiting:
            row.end_time = now
            row.reason, row.reason_code = "cancelled before it ran", ""
            self._transition(session, row, JobState.CANCELLED, "cancelled", row.reason)
        elif state.holds_devices and row.stop_target != JobState.CANCELLED:
            row.stop_target = JobState.CANCELLED.value
            row.stop_reason = "cancelled by request"
            add_event(
                session,
                row.id,
                "stopping",
                "cancel requested: SIGTERM to every rank, "
                f"SIGKILL after {self.config.stop_grace_s:g}s",
            )
            self.executor.stop(row.id, self.config.stop_grace_s)

    # -- scheduling --------------------------------------------------------------------------
    def _schedule(self, session: Session, now: float) -> list[tuple[str, Start]]:
        """Call the scheduler; record reasons and preemptions; mark starts `scheduled`.

        Jobs holding devices are ORM rows; waiting jobs are plain rows (`_queued`) whose
        changed reasons are written in one UPDATE, and a started one is loaded by id."""
        holding = self._holding(session)
        queued = self._queued(session)
        rows: dict[str, JobRow] = {row.id: row for row in holding}
        self._next_due = min(
            (r.not_before for r in queued if r.not_before is not None and r.not_before > now),
            default=None,
        )
        waiting = [r for r in queued if self._ready(r, now)]
        reasons = _Reasons(queued)
        waiting = self._gate(session, waiting, reasons, now)
        for row in queued:
            if row.held_by:  # a hold that came during the last pass keeps its own reason
                reasons.set(row.id, f"held by {row.held_by}", WaitCode.HELD.value)
            elif (
                row.state == JobState.RESTARTING
                and row.not_before is not None
                and row.not_before > now
            ):
                reasons.set(
                    row.id,
                    f"restart {row.restarts} waits for its backoff "
                    f"({row.not_before - now:.1f}s left)",
                )
        if not waiting:
            reasons.write(session)
            self._no_cycle(session, holding, now, "no job waits: the reconciler ran no cycle")
            return []
        cluster = self.inventory.current()
        if self.inventory.error and not len(cluster):
            engine, error = self.executor.engine, self.inventory.error
            for row in waiting:
                why = f"waiting for the {engine} engine: {error}"
                reasons.set(row.id, why, WaitCode.ENGINE.value)
            reasons.write(session)
            self._no_cycle(session, holding, now, f"the {engine} engine cannot be reached")
            return []
        if self.service is None:
            self.service = load_history(session, now)
        snapshot = self._snapshot(session, holding, cluster, self.service, now)
        pending = self._advice.advise(self._scheduler_jobs(session, waiting),
                                      cluster_types(cluster))
        decisions, self.carried = schedule(snapshot, pending, self.config.policy, self.carried)
        self.last_decisions = decisions
        if decisions.deferred:  # the cycle's budget was reached: the next pass runs at once
            self._due_by(now)
        self.captures.deliver(CycleRecord(snapshot, tuple(pending), self.config.policy,
                                          decisions))
        for wait in decisions.pending:
            row = rows.get(wait.job)  # a job holding devices is an ORM row of this session
            if row is None:
                reasons.set(wait.job, wait.reason, str(wait.code))
            elif (row.reason, row.reason_code) != (wait.reason, str(wait.code)):
                row.reason, row.reason_code = wait.reason, str(wait.code)
        reasons.write(session)
        for preemption in decisions.preemptions:
            self._preempt(session, rows[preemption.job], preemption.reason, preemption.for_job)
        busy = _busy_devices(
            r
            for r in holding
            if r.stop_target is not None or r.id in {p.job for p in decisions.preemptions}
        )
        starts = []
        self._claims = {}
        for start in decisions.starts:
            row = rows.get(start.job.name) or session.get(JobRow, start.job.name)
            if row.held_by:
                continue  # held while this pass ran: it stays pending
            if row.stop_target is not None:
                # Moved to another type: it restarts once this attempt has stopped.
                row.reason = f"moving: {start.why}; restarts once stopped"
                row.reason_code = WaitCode.PREEMPTING.value
                continue
            blocking = _overlap(start.replicas, busy)
            if blocking:
                row.reason = f"placed; waiting for {', '.join(sorted(blocking))} to stop"
                row.reason_code = WaitCode.PREEMPTING.value
                self._claims[row.id] = start
                continue
            self._mark_scheduled(session, row, start, snapshot.cluster, now)
            starts.append((row.id, start))
        self._learn(session, holding, queued, decisions, now)
        return starts

    def _learn(self, session: Session, holding: list[JobRow], queued: list[Queued],
               decisions: Decisions, now: float) -> None:
        """When jobs wait after this pass, relearn the service classes that are due, for the
        next passes, from the jobs that have run and not finished (`suan.sched.service_feed`,
        as the simulator does after its cycles). The pass's starts count as running from
        `now` (those waiting for a victim to stop too: the pass decided them)."""
        assert self.service is not None
        started = {start.job.name: start.job for start in decisions.starts}
        waiting = [row for row in queued if row.id not in started]
        if not waiting and not decisions.preemptions:
            return
        held = {row.id for row in holding}
        running = [Allocation(served_job(row), (), row.start_time or now) for row in holding]
        running += [Allocation(job, (), now) for name, job in started.items() if name not in held]
        stopped = self._scheduler_jobs(session, [row for row in waiting if row.attained_s > 0])
        relearn(self.service, now, running, stopped)

    def _snapshot(self, session: Session, holding: list[JobRow], cluster: Cluster,
                  service: ServiceHistory, now: float) -> Snapshot:
        """What the scheduler reads at `now`: the cluster, the jobs that hold devices and are
        not being stopped (a stopping job's devices count as free; a start that needs them
        waits for the stop, see `_schedule`), the queues, and `service`'s classes."""
        running = tuple(self._allocation(r) for r in holding if r.stop_target is None)
        return Snapshot(cluster, running, load_queues(session), now, service=service.classes)

    def _no_cycle(self, session: Session, holding: list[JobRow], now: float, why: str) -> None:
        """Answer those waiting for the next cycle's inputs when none runs: the snapshot it
        would have read."""
        if not self.captures.waiting:
            return
        service = self.service or load_history(session, now)
        snapshot = self._snapshot(session, holding, self.inventory.current(), service, now)
        self.captures.deliver(CycleRecord(snapshot, (), self.config.policy, None, why))

    def next_cycle(self, timeout: float) -> CycleRecord:
        """The inputs and decisions of the next scheduling pass (run now), once it has run;
        TimeoutError when none runs within `timeout` seconds (this server stands by)."""
        waiter = self.captures.add()
        self.wake()
        return self.captures.wait(waiter, timeout)

    def _gate(
        self, session: Session, waiting: list[Queued], reasons: _Reasons, now: float
    ) -> list[Queued]:
        """The waiting jobs whose dependencies are met and whose arrays have room
        (suan.control.batch_gate); the others get their reason, or are cancelled when a
        dependency can never be met."""
        found = gate(session, waiting)
        for job_id, (reason, code) in found.held.items():
            reasons.set(job_id, reason, code)
        if found.met:
            session.execute(update(JobRow).where(JobRow.id.in_(found.met)).values(waits_for=None))
            for job_id in found.met:
                add_event(session, job_id, "dependencies-met", "its dependencies are met")
        for job_id, why in found.doomed.items():
            row = session.get(JobRow, job_id)
            row.end_time, row.reason, row.reason_code = now, why, ""
            self._transition(session, row, JobState.CANCELLED, "cancelled", why)
            self._changed = True  # its own dependents may now be doomed too
        return found.ready

    def _ready(self, row: JobRow | Queued, now: float) -> bool:
        if row.cancel_requested or row.held_by or (
                row.not_before is not None and row.not_before > now):
            return False
        return JobState(row.state).waiting

    def _allocation(self, row: JobRow) -> Allocation:
        return Allocation(
            served_job(row),
            placement_of(row),
            row.start_time or 0.0,
            _last_checkpoint(row.checkpoint_dir),
        )

    def _preempt(self, session: Session, row: JobRow, reason: str, for_job: str) -> None:
        if row.stop_target is not None:
            return
        row.stop_target = JobState.PREEMPTED.value
        row.stop_reason = f"preempted for {for_job}: {reason}"
        add_event(session, row.id, "preempting", row.stop_reason)
        self.executor.stop(row.id, self.config.stop_grace_s)

    def _mark_scheduled(
        self, session: Session, row: JobRow, start: Start, cluster: Cluster, now: float
    ) -> None:
        first_node = cluster.node(start.replicas[0].node) if start.replicas else None
        fallback = first_node.accelerator if first_node else None
        accelerator = next((a for a in start.accelerators if a), fallback)
        row.placement = placement_json(start.replicas, accelerator, start.why)
        row.attempt += 1
        row.start_time = now
        row.not_before = None
        row.reason, row.reason_code = start.why, ""
        where = "; ".join(
            f"rank {i}: {r.node} devices {list(r.devices)}" for i, r in enumerate(start.replicas)
        )
        self._transition(
            session,
            row,
            JobState.SCHEDULED,
            "scheduled",
            f"attempt {row.attempt}: {start.why} ({where})",
        )

    # -- launching ---------------------------------------------------------------------------
    def _launch(self, row_id: str, start: Start, now: float) -> None:
        with self._session() as session:
            row = session.get(JobRow, row_id)
            if row is None or row.state != JobState.SCHEDULED:
                return
            ranks = processes(start.replicas, scheduler_job(row).processes)
            try:
                request = self._launch_request(row, ranks)
                handles = self.executor.launch(request, ranks)
            except EngineError as exc:
                handles = self._launched_anyway(row)
                if not handles:
                    self._launch_refused(session, row, str(exc), now)
                    return
            except (OSError, ValueError) as exc:
                row.placement, row.end_time = None, now
                row.reason = f"launch failed: {exc}"
                self._transition(session, row, JobState.FAILED, "failed", row.reason)
                return
            _record_ranks(session, handles)
            self._transition(session, row, JobState.RUNNING, "running", _started(handles))
            self.metrics.job_running(row, now)

    def _launched_anyway(self, row: JobRow) -> list[RankHandle]:
        """The ranks of a launch the engine made although its answer was an error (a submit
        that timed out after the engine took it), adopted; [] when it made none."""
        try:
            found = self.executor.discover(row.id, row.attempt)
        except EngineError:
            return []
        if found:
            self.executor.adopt(found)
        return found

    def _launch_refused(self, session: Session, row: JobRow, message: str, now: float) -> None:
        """The engine refused a launch: back to pending with its words, or failed after
        `launch_refusals` refusals in a row."""
        add_event(session, row.id, "launch-refused", message)
        session.flush()
        refusals = session.scalar(
            select(func.count()).where(
                EventRow.job_id == row.id,
                EventRow.kind == "launch-refused",
                EventRow.id > _last_event_id(session, row.id, "running"),
            )
        )
        row.placement = None
        if refusals >= self.config.launch_refusals:
            row.end_time = now
            row.reason = f"the {self.executor.engine} engine refused it {refusals} times: {message}"
            row.reason_code = ""
            self._transition(session, row, JobState.FAILED, "failed", row.reason)
            return
        row.not_before = now + restart_backoff_s(refusals, self.config.restart_backoff_s)
        self._due_by(row.not_before)
        row.reason = f"the {self.executor.engine} engine refused the launch: {message}"
        row.reason_code = WaitCode.ENGINE.value
        self._transition(session, row, JobState.PENDING, "pending", row.reason)

    def _launch_request(
        self, row: JobRow, ranks: tuple[ReplicaPlacement, ...] | None = None
    ) -> JobLaunch:
        job = scheduler_job(row)
        ranks = processes(placement_of(row), job.processes) if ranks is None else ranks
        memory, pids = self.config.limits.per_rank(job, ranks, job.processes)
        placement = json.loads(row.placement or "{}")
        env = dict(job.env)
        if job.model is not None and placement.get("accelerator"):
            devices = sum(len(r["devices"]) for r in placement.get("replicas", []))
            env.update(planned_layout(job.model, placement["accelerator"], devices, env))
        cluster = self.inventory.current()  # the job's own variables win over the advice
        env = {**launch_environment(row, cluster, self.config.checkpoint_write_gbs),
               **array_environment(row), **env}
        return JobLaunch(
            job_id=row.id,
            attempt=row.attempt,
            command=job.command,
            env=env,
            checkpoint_dir=row.checkpoint_dir,
            workdir=row.workdir,
            restart_count=row.attempt - 1,
            accelerator=placement.get("accelerator"),
            simulated=self.config.simulated,
            image=job.image,
            run_as=self.config.identity.resolve(row.user),
            memory_mib=memory,
            pids=pids,
            log_bytes=self.config.limits.log_bytes,
        )

    @staticmethod
    def _transition(
        session: Session, row: JobRow, target: JobState, kind: str, message: str
    ) -> None:
        row.state = check_transition(row.state, target).value
        add_event(session, row.id, kind, message)


class _Reasons:
    """Why waiting jobs wait, as the tick found it and as it decides it: `write` updates only
    the jobs whose reason changed, in one statement."""

    def __init__(self, queued: list[Queued]):
        self._old = {row.id: (row.reason, row.reason_code) for row in queued}
        self._new: dict[str, tuple[str, str]] = {}

    def set(self, job_id: str, reason: str, code: str | None = None) -> None:
        """The reason (and, when given, its code) of `job_id` from now on."""
        before = self._new.get(job_id) or self._old.get(job_id, ("", ""))
        self._new[job_id] = (reason, before[1] if code is None else code)

    def write(self, session: Session) -> None:
        changed = [
            {"id": job_id, "reason": reason, "reason_code": code}
            for job_id, (reason, code) in self._new.items()
            if self._old.get(job_id) != (reason, code)
        ]
        if changed:
            session.execute(update(JobRow), changed)
        self._new.clear()


LAYOUT_VARIABLES = ("SUAN_TP", "SUAN_PP", "SUAN_DP", "SUAN_CP", "SUAN_EP", "SUAN_VPP")


def planned_layout(
    model: str, accelerator: str, devices: int, env: dict[str, str]
) -> dict[str, str]:
    """The planner's layout for a job that names its model: SUAN_TP, SUAN_PP, SUAN_DP, ... for
    its devices, at the sequence length and global batch the job's env gives (SUAN_SEQ,
    SUAN_GLOBAL_BATCH) or the planner's defaults. A job that sets any layout variable itself
    keeps its own layout; when no layout fits, SUAN_PLAN_ERROR says why and the job runs
    without one."""
    from suan.plan.advice import default_batch
    from suan.plan.use import job_workload, plan_env

    if any(key in env for key in LAYOUT_VARIABLES):
        return {}
    try:
        seq, batch = job_workload(env)
        layout = plan_env(model, accelerator, devices, seq, batch or default_batch(seq))
    except (SuanError, ValueError) as exc:
        return {"SUAN_PLAN_ERROR": str(exc).splitlines()[-1].strip(" -")}
    return layout


def _handles(session: Session, row: JobRow) -> list[RankHandle]:
    query = select(RankRow).where(RankRow.job_id == row.id, RankRow.attempt == row.attempt)
    return [
        RankHandle(
            r.job_id,
            r.attempt,
            r.rank,
            r.node,
            tuple(int(d) for d in r.devices.split(",") if d),
            r.pid,
            r.start_ticks,
            r.log_path,
            r.engine_id,
        )
        for r in session.scalars(query)
    ]


def _started(handles: list[RankHandle]) -> str:
    """The 'running' event: pids for local ranks, the engine's ids otherwise."""
    ids = sorted({h.engine_id for h in handles if h.engine_id})
    if ids:
        return f"{len(handles)} ranks started (engine ids {', '.join(ids)})"
    return f"{len(handles)} ranks started (pids {', '.join(str(h.pid) for h in handles)})"


def _last_event_id(session: Session, job_id: str, kind: str) -> int:
    query = select(func.max(EventRow.id)).where(EventRow.job_id == job_id, EventRow.kind == kind)
    return session.scalar(query) or 0


def _record_ranks(session: Session, handles: list[RankHandle]) -> None:
    for h in handles:
        session.merge(
            RankRow(
                job_id=h.job_id,
                attempt=h.attempt,
                rank=h.rank,
                node=h.node,
                devices=",".join(str(d) for d in h.devices),
                pid=h.pid,
                start_ticks=h.start_ticks,
                log_path=h.log_path,
                engine_id=h.engine_id,
            )
        )


def _record_exit_codes(session: Session, row: JobRow, status: JobStatus) -> None:
    ended = {r.rank: r.exit_code for r in status.ranks if not r.running}
    if not ended:
        return
    query = select(RankRow).where(RankRow.job_id == row.id, RankRow.attempt == status.attempt)
    for rank_row in session.scalars(query):
        code = ended.get(rank_row.rank)
        if code is not None and rank_row.exit_code is None:
            rank_row.exit_code = code


def _busy_devices(rows: Iterable[JobRow]) -> dict[tuple[str, int], str]:
    """(node, device) -> id of a job still holding it while it stops."""
    return {
        (p.node, device): row.id for row in rows for p in placement_of(row) for device in p.devices
    }


def _overlap(replicas: tuple[ReplicaPlacement, ...], busy: dict[tuple[str, int], str]) -> set[str]:
    return {busy[(r.node, d)] for r in replicas for d in r.devices if (r.node, d) in busy}


def _last_checkpoint(directory: str) -> float | None:
    """The newest modification time of anything directly in `directory`, None when empty."""
    try:
        times = [entry.stat().st_mtime for entry in os.scandir(directory)]
    except OSError:
        return None
    return max(times) if times else None
