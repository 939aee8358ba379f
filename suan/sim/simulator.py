"""The discrete-event simulator: trace jobs arrive, the scheduler decides, jobs run and end.

Every timestamp's events (finishes, failures, recoveries, arrivals, wake-ups, ticks) are
handled together, then at most one scheduling cycle runs, and only when something changed and
jobs wait. A cycle is the scheduler's own (`suan.sim.warm`); its preemptions and starts are
applied at once, and each start schedules the job's finish from the runtime model. The same
jobs, cluster and config always give the same result.

Batch jobs follow the control plane's rules: a run that would outlast the job's time limit
(its own, else its queue's default, `suan.control.time_limits`) is stopped at the limit and
the job ends TIMEOUT; the scheduler's backfill bounds such a run by the limit where the job
has no estimate (`Job.run_bound_s`); dependencies and array throttles decide which arrived
jobs are offered to the scheduler (`suan.sim.batch`).
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Cluster
from suan.cluster.snapshot import Allocation, ReplicaPlacement
from suan.jobs.model import Job, ReplicaGroup
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec
from suan.jobs.units import format_duration
from suan.sched import Policy, Start, get_policy
from suan.sched.budget import MAX_STARTS
from suan.sched.phases import QUEUE, RANK
from suan.sched.service import ServiceHistory
from suan.sched.service_feed import record_finish, record_stop, relearn
from suan.sim.batch import ARRAY_LIMIT, DEPENDENCY, ArrayRoom, BatchGate
from suan.sim.events import Event, EventQueue, Kind
from suan.sim.failures import FailureModel, with_failure
from suan.sim.runtime import RuntimeModel, checkpoint_plan
from suan.sim.state import JobState, Status
from suan.sim.warm import WarmScheduler
from suan.sim.workload import TraceJob, replica_shape

Progress = Callable[[int, int], None]
"""Called with (jobs finished or rejected, total jobs) as the replay advances."""
Journal = list[tuple[float, str, str, tuple[ReplicaPlacement, ...]]]
"""What a replay did, in order: (time, "cycle" | "start" | "preempt" | "fail" | "move" |
"timeout" | "cancel", job name (empty for a cycle), where it starts (empty for the others))."""


@dataclass(frozen=True)
class SimConfig:
    """How to replay: the policy, tick interval, runtime and failure models, queues."""

    policy: str | Policy = "fifo"
    tick_s: float | None = 300.0
    runtime: RuntimeModel = field(default_factory=RuntimeModel)
    failures: FailureModel | None = None
    queues: tuple[QueueSpec, ...] = (DEFAULT_QUEUE,)
    oracle_estimates: bool = False
    warm: bool = True
    queue_depth: int | None = None
    """Pass only the first N waiting jobs, in the policy's order, to each cycle (None: all),
    like Slurm's `default_queue_depth`; bounds the cost of a cycle under a long queue."""


@dataclass
class SimResult:
    """Everything a replay produced: per-job records, the timeline and counters."""

    policy: str
    capacity: int
    jobs: list[JobState]
    timeline: list[tuple[float, float, int, int]]
    events: int
    cycles: int
    wall_s: float
    failures: int = 0


class Simulator:
    """One replay of `jobs` on `cluster` under `config`. Call `run()` once."""

    def __init__(self, jobs: Sequence[TraceJob], cluster: Cluster, config: SimConfig,
                 catalog: Catalog | None = None):
        self.config = config
        self.catalog = catalog or default_catalog()
        self.policy = (get_policy(config.policy) if isinstance(config.policy, str)
                       else config.policy)
        self.runtime = config.runtime
        self.queue = EventQueue()
        self.sched = WarmScheduler(cluster, _all_queues(config.queues, jobs), self.catalog,
                                   warm=config.warm)
        self.node_sizes = _node_sizes(cluster)
        self.states = [JobState(i, t, self._job(t)) for i, t in enumerate(jobs)]
        self.refused = self._queue_time_limits()
        """Job index -> why its queue refuses it (a time limit over the queue's maximum)."""
        for state in self.states:
            if state.trace.checkpoint_cost_s or state.trace.checkpoint_interval_s:
                plan = checkpoint_plan(state.trace, state.job.groups[0].replicas,
                                       config.failures)
                if plan is not None:
                    state.interval_s, state.checkpoint_cost_s = plan
        self.by_name = {s.job.name: s for s in self.states}
        if len(self.by_name) != len(self.states):
            raise ValueError("job ids must be unique")
        self.gate = BatchGate(self.states) if BatchGate.needed(self.states) else None
        if self.gate is not None:
            _check_dependency_order(self.states, self.by_name)
        self.released = False
        """Whether a job's dependencies were met during the cycle now running (by a start)."""
        self.pending: dict[str, JobState] = {}
        self.waiting: list[tuple[tuple[object, ...], int]] = []
        self.outstanding = 0
        self.allocated = 0.0
        self.timeline: list[tuple[float, float, int, int]] = []
        self.failures = 0
        self.rng = config.failures.rng() if config.failures else random.Random(0)
        self.progress: Progress | None = None
        self.done = 0
        self.total = cluster.capacity()
        self.capacity = sum(self.total.values())
        self.largest = self.node_sizes
        order = self.policy.order
        self.history = ServiceHistory() if order.classed else None
        self.order_key = self.policy.waiting_key(None)
        self.need = [_whole_need(state.job) for state in self.states]
        self.idle_cycles_skippable = _idle_cycles_skippable(self.policy, self.sched.queues)
        self.line_blocks = _line_blocks(self.policy, config, self.sched.queues)
        self.context_free = self.policy.placer.name in CONTEXT_FREE_PLACERS
        self.in_cycle_order = _in_cycle_order(self.policy, config)
        rank = self.policy.rank
        self.waiting_rank: list[int] | None = None if rank is None else [0] * len(self.states)
        """Under a rank policy: each waiting job's rank, set when it starts to wait (it is
        fixed while the job waits)."""
        self.journal: Journal | None = None
        """Set to a list to have `run()` append every scheduling cycle, start and stop to it."""

    # ------------------------------------------------------------------ set-up
    def _job(self, trace: TraceJob) -> Job:
        types = (self.catalog.canonical(trace.gpu_type),) if trace.gpu_type else ()
        sizes = [size for name, size in self.node_sizes.items() if not types or name == types[0]]
        replicas, per = replica_shape(trace.num_gpus, max(sizes, default=trace.num_gpus))
        group = ReplicaGroup(replicas=replicas, accelerators=per, accelerator_types=types)
        interval = self.runtime.checkpoint_interval_s
        plan = checkpoint_plan(trace, replicas, self.config.failures)
        if plan is not None:
            interval = plan[0]
        return Job(
            trace.job_id, (group,), queue=trace.queue, user=trace.user,
            priority=trace.priority, submit_time=trace.submit_time,
            runtime_estimate_s=trace.duration_s if self.config.oracle_estimates else None,
            duration_s=trace.duration_s, checkpoint_interval_s=interval or None,
            type_speeds=type_speeds(trace, self.catalog), series=trace.series,
            time_limit_s=trace.time_limit_s,
        )

    def _queue_time_limits(self) -> dict[int, str]:
        """Give each job without a time limit its queue's default, as the control plane does
        at submit (`suan.control.time_limits.with_queue_limits`); job index -> why its queue
        refuses a job whose limit is over the queue's maximum."""
        queues = {queue.name: queue for queue in self.sched.queues}
        if not any(q.default_time_limit_s or q.max_time_limit_s for q in queues.values()):
            return {}
        from suan.control.time_limits import with_queue_limits  # loads the control plane

        refused = {}
        for state in self.states:
            (state.job,), problems = with_queue_limits([state.job], [(state.index, {})], queues)
            if problems:
                refused[state.index] = f"timeLimit {problems[0].message}"
        return refused

    def _fits_ever(self, state: JobState) -> bool:
        """False for a job larger than every usable type's capacity or node (of the cluster
        as it started)."""
        group = state.job.groups[0]
        return any(
            total >= state.devices and self.largest[node_type] >= group.accelerators
            for node_type, total in self.total.items() if state.job.accepts(node_type)
        )

    def _seed_events(self) -> None:
        for state in self.states:
            self.queue.push(state.trace.submit_time, Kind.ARRIVAL, state.index)
        self.outstanding = len(self.states)
        first = min((s.trace.submit_time for s in self.states), default=0.0)
        if self.config.tick_s:
            self.queue.push(first + self.config.tick_s, Kind.TICK)
        if self.config.failures:
            for subject, mtbf in self.config.failures.subjects(self.sched.cluster):
                self.queue.push(first + self.rng.expovariate(1 / mtbf), Kind.FAILURE, subject)

    # ------------------------------------------------------------------ main loop
    def run(self, progress: Progress | None = None) -> SimResult:
        """Replay until every job has finished (or was rejected as unschedulable)."""
        started = time.perf_counter()
        self.progress = progress
        self._seed_events()
        handlers = {
            Kind.FINISH: self._on_finish, Kind.FAILURE: self._on_failure,
            Kind.RECOVERY: self._on_recovery, Kind.ARRIVAL: self._on_arrival,
            Kind.WAKE: self._on_wake, Kind.TICK: self._on_tick,
        }
        while self.outstanding and len(self.queue):
            batch = self.queue.pop_batch()
            now = self.queue.now
            changed = False
            for event in batch:
                changed = handlers[event.kind](event, now) or changed
            if changed and (self.pending or self._may_move()):
                self._cycle(now)
                if self.history is not None and self.pending:
                    self._learn_and_arm(now)
            self.timeline.append((now, self.allocated, len(self.pending), self.capacity))
        return SimResult(self.policy.name, sum(self.sched.cluster.capacity().values()),
                         self.states, self.timeline, self.queue.popped, self.sched.cycles,
                         time.perf_counter() - started, self.failures)

    def _may_move(self) -> bool:
        """A cycle with no job waiting can still move running jobs to faster types (when the
        cluster has more than one type)."""
        return self.policy.migrate and len(self.total) > 1 and bool(self.sched.live)

    # ------------------------------------------------------------------ handlers
    def _on_arrival(self, event: Event, now: float) -> bool:
        state = self.states[int(event.subject)]
        state.arrived = now
        if not self._fits_ever(state) or state.index in self.refused:
            state.status = Status.REJECTED
            state.reason = self.refused.get(state.index, "")
            self._retire()
            if self.gate is not None:
                self._rejudge(state, now)
            return False
        if self.gate is None:
            self._enqueue(state, now)
            return True
        self._offer(state, now)
        return state.status == Status.PENDING

    def _on_finish(self, event: Event, now: float) -> bool:
        state = self.states[int(event.subject)]
        if event.epoch != state.epoch or state.status != Status.RUNNING:
            return False
        if self.history is not None:
            record_finish(self.history, state.job, state.attained_at(now))
        if state.limit_end is not None:
            self._time_out(state, now)
            return True
        self._release(state)
        state.restart_s += max(0.0, min(state.work_start, now) - state.run_start)
        state.useful_gpu_s += state.devices * max(0.0, now - state.work_start)
        state.progress = 1.0
        state.status = Status.DONE
        state.end = now
        self._retire()
        if self.gate is not None:
            self._ended(state, now)
        return True

    def _time_out(self, state: JobState, now: float) -> None:
        """The run reached the job's time limit: stop it; the job ends TIMEOUT (the control
        plane's final state, whatever the work done: the same run would stop there again)."""
        limit = state.job.time_limit_s
        if self.journal is not None:
            self.journal.append((now, "timeout", state.job.name, ()))
        self._release(state)
        state.restart_s += max(0.0, min(state.work_start, now) - state.run_start)
        state.attained += state.devices * (now - state.run_start)
        state.status = Status.TIMEOUT
        state.end = now
        state.reason = f"its run reached its time limit of {format_duration(limit or 0.0)}"
        self._retire()
        if self.gate is not None:
            self._ended(state, now)

    def _on_tick(self, event: Event, now: float) -> bool:
        if self.outstanding and self.config.tick_s:
            self.queue.push(now + self.config.tick_s, Kind.TICK)
        return True

    def _on_wake(self, event: Event, now: float) -> bool:
        """A running job crossed a bound of the policy's rank (preemptive LAS: the cycle
        ranks it lower) or of its service class (a waiting job may now preempt it)."""
        state = self.states[int(event.subject)]
        if event.epoch != state.epoch or state.status != Status.RUNNING:
            return False
        if self.policy.rank is not None:
            self._schedule_demotion(state, now)
            return True
        if not self.pending:
            state.armed = False
            return False
        self._schedule_demotion(state, now)
        return self._class_worsened(state, now) or self._just_time_shareable(state, now)

    def _learn_and_arm(self, now: float) -> None:
        """Jobs wait after a cycle: relearn the service classes that are due (for the next
        cycles; `suan.sched.service_feed`), then arm the running jobs' wake-ups."""
        assert self.history is not None
        live = (self.by_name[name].alloc for name in self.sched.live)
        running = [alloc for alloc in live if alloc is not None]
        stopped = (state.job for state in self.pending.values())
        if relearn(self.history, now, running, stopped):
            self._relearned()
        self._arm(now)

    def _arm(self, now: float) -> None:
        """Jobs wait: wake every running job at its next service-class bound (wake-ups stop
        while no job waits, since no one could preempt it then)."""
        for name in self.sched.live:
            state = self.by_name[name]
            if not state.armed:
                state.armed = True
                self._schedule_demotion(state, now)

    def _class_worsened(self, state: JobState, now: float) -> bool:
        """Whether a running job just moved to a worse service class (only then may a
        waiting job preempt it, so only then is a cycle worth running)."""
        assert self.history is not None
        classes, attained = self.history.classes, state.attained_at(now)
        queue, series = state.job.queue, state.job.series
        return (classes.level(queue, attained + 1e-6, series)
                > classes.level(queue, attained - 1e-6, series))

    def _relearned(self) -> None:
        """The service classes changed: re-file the waiting jobs under the new order and
        disarm the running jobs' wake-ups (the caller re-arms them at the new bounds)."""
        assert self.history is not None
        classes = self.history.classes
        self.sched.service = classes
        self.order_key = self.policy.waiting_key(classes)
        if self.config.queue_depth:
            self.waiting = sorted((self.order_key(self.states[i].job), i)
                                  for _, i in self.waiting)
        for name in self.sched.live:
            self.by_name[name].armed = False

    def _on_failure(self, event: Event, now: float) -> bool:
        subject = str(event.subject)
        model = self.config.failures
        assert model is not None
        node, _, device = subject.partition("#")
        for name in list(self.sched.live):
            state = self.by_name[name]
            assert state.alloc is not None
            if any(r.node == node and (not device or int(device) in r.devices)
                   for r in state.alloc.replicas):
                self._stop(state, now, failed=True)
        self.failures += 1
        self._set_cluster(with_failure(self.sched.cluster, subject, True))
        self.queue.push(now + model.repair_s, Kind.RECOVERY, subject)
        return True

    def _on_recovery(self, event: Event, now: float) -> bool:
        subject = str(event.subject)
        model = self.config.failures
        assert model is not None
        self._set_cluster(with_failure(self.sched.cluster, subject, False))
        mtbf = model.device_mtbf_s if "#" in subject else model.node_mtbf_s
        if mtbf:
            self.queue.push(now + self.rng.expovariate(1 / mtbf), Kind.FAILURE, subject)
        return True

    def _set_cluster(self, cluster: Cluster) -> None:
        self.sched.set_cluster(cluster)
        self.capacity = sum(self.sched.capacity.values())

    # ------------------------------------------------------------------ batch gate
    def _offer(self, state: JobState, now: float, changed: JobState | None = None) -> None:
        """A job with a gate waits: hold it for its dependencies or its array's throttle, or
        offer it to the scheduler; cancel it when a dependency can never be met
        (`suan.sim.batch`; `changed`: the job it names that just started or ended)."""
        assert self.gate is not None
        if state.trace.dependencies and state.dependency_wait_s is None:
            answer, reason = self.gate.judge(state, changed)
            if answer == "never":
                self._cancel(state, now, reason)
                return
            if answer == "wait":
                _hold(state, "", DEPENDENCY)  # the reason: BatchGate.reason
                return
            state.dependency_wait_s = now - state.arrived
            self.released = True
        room = self.gate.room_of(state)
        if room is None:
            self._enqueue(state, now)
            return
        room.add(state)
        _hold(state, room.reason(), ARRAY_LIMIT)
        self._sync_array(room, now)

    def _sync_array(self, room: ArrayRoom, now: float) -> None:
        """Offer the array's waiting members within its room, hold the rest."""
        allowed = room.may_offer()
        for index in room.offered.difference(allowed):
            member = self.states[index]
            self._withdraw(member)
            _hold(member, room.reason(), ARRAY_LIMIT)
        for index in allowed:
            if index not in room.offered:
                self._enqueue(self.states[index], now)
        room.offered = set(allowed)

    def _requeue(self, state: JobState, now: float) -> None:
        """A stopped job waits again (a member of a throttled array within its room)."""
        room = self.gate.room_of(state) if self.gate is not None else None
        if room is None:
            self._enqueue(state, now)
            return
        room.running -= 1
        self._offer(state, now)

    def _ended(self, state: JobState, now: float) -> None:
        """A job that ran ended: its array has room for another member, and the jobs that
        depend on it are judged again."""
        assert self.gate is not None
        room = self.gate.room_of(state)
        if room is not None:
            room.running -= 1
            self._sync_array(room, now)
        self._rejudge(state, now)

    def _rejudge(self, state: JobState, now: float) -> None:
        """`state` started or ended: judge the jobs held for it again (a cancelled one in
        turn has its own dependents judged)."""
        assert self.gate is not None
        changed = [state]
        while changed:
            target = changed.pop()
            for dependent in self.gate.waiting_on(target):
                self._offer(dependent, now, target)
                if dependent.status == Status.CANCELLED:
                    changed.append(dependent)

    def _cancel(self, state: JobState, now: float, reason: str) -> None:
        state.status = Status.CANCELLED
        state.end = now
        state.reason, state.wait_code = reason, ""
        if self.journal is not None:
            self.journal.append((now, "cancel", state.job.name, ()))
        self._retire()

    def _withdraw(self, state: JobState) -> None:
        """Take a waiting job back from the scheduler's view."""
        self.pending.pop(state.job.name, None)
        if self.config.queue_depth:
            self.waiting.remove((self.order_key(state.job), state.index))

    # ------------------------------------------------------------------ the cycle
    def _enqueue(self, state: JobState, now: float) -> None:
        """A job starts waiting: file it in the policy's order (every order key is fixed
        while a job waits)."""
        state.status = Status.PENDING
        state.reason = state.wait_code = ""
        self.pending[state.job.name] = state
        if self.waiting_rank is not None and self.policy.rank is not None:
            self.waiting_rank[state.index] = self.policy.rank.waiting(state.job)
        if self.config.queue_depth:
            bisect.insort(self.waiting, (self.order_key(state.job), state.index))

    def _waiting_jobs(self) -> list[Job]:
        depth = self.config.queue_depth
        if not depth:
            return [s.job for s in self.pending.values()]
        return [self.states[index].job for _, index in self.waiting[:depth]]

    def _cycle(self, now: float) -> None:
        """Cycles at `now` until one defers no job to the next (`suan.sched.budget`). A
        cycle that can start and preempt nothing is not run, and a cycle is given only the
        waiting jobs it may start (`_may_start`)."""
        deferred = True
        while deferred:
            waiting = self._waiting_jobs()
            if self.idle_cycles_skippable:
                waiting = self._may_start(waiting, now)
                if not waiting:
                    return
            if self.journal is not None:
                self.journal.append((now, "cycle", "", ()))
            decisions = self.sched.run(waiting, self.policy, now)
            for preemption in decisions.preemptions:
                moved = preemption.for_job == preemption.job
                self._stop(self.by_name[preemption.job], now, failed=False, moved=moved)
            self.released = False
            for start in decisions.starts:
                self._start(self.by_name[start.job.name], start, now)
            deferred = decisions.deferred > 0 or self.released

    def _may_start(self, waiting: list[Job], now: float) -> list[Job]:
        """The waiting jobs a cycle must be given to make every start and preemption it
        would make over all of `waiting`; [] when it would make none (then it is not run).

        Here (`_idle_cycles_skippable`) a job can preempt only by priority (its rank under a
        rank policy), so none can while no waiting job's is above a preemptible running
        job's (`_may_preempt`); and a job that needs more whole devices than are free cannot
        start. Such a job is left out when that changes no other job's fate: no backfill (it
        would hold a reservation) and a placement that does not look at the other waiting
        jobs or their number. Where the line blocks, the jobs from the first whose need
        exceeds what its predecessors can have left are left out (it blocks the rest); in the
        cycle's order, so are the jobs of a shape beyond what the free devices could start
        (`_within_free`).

        The walk over classes of alike jobs (`suan.sched.sweep`) makes the decisions of the
        plain walk over the same jobs, so this holds for it too.

        A window longer than the budget of starts (`suan.sched.budget`) is not thinned: a
        cycle over it may defer jobs and be run again at once over the next window, and
        leaving jobs out could change whether it defers any; a shorter one defers none."""
        if not waiting or self._may_preempt(waiting, now):
            return waiting
        kept = self._startable(waiting)
        return waiting if kept and len(waiting) > MAX_STARTS else kept

    def _startable(self, waiting: list[Job]) -> list[Job]:
        """`_may_start` once no job may preempt."""
        free = self.sched.free_whole_devices
        need, by_name = self.need, self.by_name
        needs = [need[by_name[job.name].index] for job in waiting]
        if self.line_blocks:
            for count, needed in enumerate(needs):
                free -= needed
                if free < 0:
                    return waiting[:count] if self.context_free else waiting if count else []
            return waiting
        if all(needed > free for needed in needs):
            return []
        if self.policy.backfill or not self.context_free:
            return waiting
        if not self.in_cycle_order:
            return [job for job, needed in zip(waiting, needs, strict=True) if needed <= free]
        return _within_free(waiting, needs, free)

    def _may_preempt(self, waiting: list[Job], now: float) -> bool:
        """Whether some waiting job's priority (under a rank policy its rank, the waiting
        rank fixed while it waits, the running one as of `now`) is above a preemptible
        running job's, so that the cycle might preempt by priority."""
        if not self.policy.preemption:
            return False
        rank, ranks = self.policy.rank, self.waiting_rank
        if rank is None or ranks is None:
            top = max(job.priority for job in waiting)
            return top > min(self.sched.preemptible_priorities, default=top)
        by_name = self.by_name
        top = max(ranks[by_name[job.name].index] for job in waiting)
        return any(rank.running(alloc, now) < top for alloc in self.sched.live.values()
                   if alloc.job.preemptible)

    def _start(self, state: JobState, start: Start, now: float) -> None:
        accelerator = next((a for a in start.accelerators if a), None)
        if accelerator is None:
            accelerator = self.sched.cluster.node(start.replicas[0].node).accelerator or ""
        seconds = self.runtime.run_seconds(state.trace, accelerator, self.sched.cluster,
                                           start.replicas, self.catalog)
        if state.checkpoint_cost_s and state.interval_s:
            seconds *= (state.interval_s + state.checkpoint_cost_s) / state.interval_s
        restarted = state.runs > 0
        state.runs += 1
        state.rate = 1.0 / max(seconds, 1e-9)
        state.run_start = now
        state.work_start = now + (self.runtime.restart_overhead_s if restarted else 0.0)
        state.accelerator = accelerator
        state.alloc = Allocation(state.job, start.replicas, start_time=now)
        state.status = Status.RUNNING
        if state.first_start is None:
            state.first_start = now
        self.pending.pop(state.job.name, None)
        if self.config.queue_depth:
            self.waiting.remove((self.order_key(state.job), state.index))
        self.sched.add(state.alloc)
        self.allocated += _devices(state.alloc)
        finish = state.work_start + max(0.0, 1.0 - state.progress) / state.rate
        state.limit_end = None
        if state.job.time_limit_s is not None and _overrun(state.job, now, finish):
            state.limit_end = finish = now + state.job.time_limit_s
        self.queue.push(finish, Kind.FINISH, state.index, state.epoch)
        if self.journal is not None:
            self.journal.append((now, "start", state.job.name, start.replicas))
        if self.history is None:
            self._schedule_demotion(state, now)
        if self.gate is not None:
            self._started(state, now)

    def _started(self, state: JobState, now: float) -> None:
        """A job with a gate started: it holds a place in its array's room, and the jobs
        that wait for it to start are judged again."""
        assert self.gate is not None
        room = self.gate.room_of(state)
        if room is not None:
            room.discard(state)
            room.running += 1
        self._rejudge(state, now)

    def _time_shareable_from(self, state: JobState) -> float | None:
        """When a running job's current run has lasted the policy's minimum before a job of
        its own queue may preempt it (None: the policy does not time-share)."""
        policy = self.policy
        if self.history is None or not policy.order_preemption:
            return None
        return state.run_start + policy.class_preemption_min_run_s

    def _just_time_shareable(self, state: JobState, now: float) -> bool:
        """Whether a running job has just become preemptible by its own queue (a waiting job
        in a better class may now take its place)."""
        eligible = self._time_shareable_from(state)
        return eligible is not None and abs(now - eligible) < 1e-6

    def _schedule_demotion(self, state: JobState, now: float) -> None:
        """Wake up when a running job's attained service crosses the next bound (of the
        policy's rank, or of its service class); under time sharing, first when its run has
        lasted the minimum (no class change before then lets its queue preempt it)."""
        eligible = self._time_shareable_from(state)
        if eligible is not None and eligible > now + 1e-6:
            self.queue.push(eligible, Kind.WAKE, state.index, state.epoch)
            return
        attained = state.attained_at(now)
        limit = self._next_bound(state.job, attained)
        if limit is not None:
            self.queue.push(now + (limit - attained) / state.devices, Kind.WAKE,
                            state.index, state.epoch)

    def _next_bound(self, job: Job, attained: float) -> float | None:
        if self.history is not None:
            return self.history.classes.next_change(job.queue, attained + 1e-6, job.series)
        rank = self.policy.rank
        return rank.next_change(job, attained) if rank is not None else None

    def _stop(self, state: JobState, now: float, *, failed: bool, moved: bool = False) -> None:
        """Preempt, move or fail a running job: keep its checkpointed work (a fraction of the
        whole, whatever the type), requeue it."""
        if self.history is not None:
            record_stop(self.history, state.job, state.attained_at(now))
        if self.journal is not None:
            kind = "fail" if failed else "move" if moved else "preempt"
            self.journal.append((now, kind, state.job.name, ()))
        self._release(state)
        interval = state.checkpoint_period_s(self.runtime.checkpoint_interval_s)
        state.restart_s += max(0.0, min(state.work_start, now) - state.run_start)
        worked = max(0.0, now - state.work_start)
        kept = self.runtime.kept_work_s(worked, interval)
        if interval is None:
            state.useful_gpu_s -= state.devices * state.kept_s
            state.kept_s, state.progress = 0.0, 0.0
        else:
            state.kept_s += kept
            state.progress = min(1.0, state.progress + kept * state.rate)
        state.useful_gpu_s += state.devices * kept
        state.lost_gpu_s += state.devices * (now - state.run_start - kept)
        state.attained += state.devices * (now - state.run_start)
        if failed:
            state.failures += 1
        elif moved:
            state.migrations += 1
        else:
            state.preemptions += 1
        state.job = replace(state.job, attained_service_s=state.attained)
        self._requeue(state, now)

    def _release(self, state: JobState) -> None:
        assert state.alloc is not None
        self.sched.remove(state.job.name)
        self.allocated -= _devices(state.alloc)
        state.armed = False
        state.alloc = None
        state.epoch += 1

    def _retire(self) -> None:
        self.outstanding -= 1
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, len(self.states))


def _hold(state: JobState, reason: str, code: str) -> None:
    """An arrived job waits without being offered to the scheduler."""
    state.status = Status.HELD
    state.reason, state.wait_code = reason, code


def _overrun(job: Job, start: float, end: float) -> bool:
    """Whether a run of `job` from `start` to `end` outlasts its time limit, by the control
    plane's test (`suan.control.time_limits.overrun`)."""
    from suan.control.time_limits import overrun  # loads the control plane

    return overrun(job, start, end) is not None


def _check_dependency_order(states: Sequence[JobState], by_name: dict[str, JobState]) -> None:
    """ValueError unless every job depends only on earlier jobs (or on unknown ones, which
    are cancelled as gone): a job can only depend on jobs that exist, so there is no cycle."""
    for state in states:
        for _, target in state.trace.dependencies:
            found = by_name.get(target)
            if found is not None and found.index >= state.index:
                raise ValueError(f"job {state.job.name} depends on job {target}, which is "
                                 "not an earlier job of the trace")


SPEED_DIGITS = 4
"""Significant digits kept of a job's relative speeds: jobs of one kind get equal speeds,
hence one scheduler shape."""


def type_speeds(trace: TraceJob, catalog: Catalog) -> tuple[tuple[str, float], ...]:
    """The job's relative speed per type from its per-type durations (the fastest type is 1,
    a type twice as slow 0.5), canonical names, fastest first; () without durations."""
    known = {_canonical(name, catalog): seconds for name, seconds in trace.durations.items()
             if seconds > 0}
    if not known:
        return ()
    best = min(known.values())
    speeds = {name: float(f"{best / seconds:.{SPEED_DIGITS}g}") for name, seconds in known.items()}
    return tuple(sorted(speeds.items(), key=lambda item: (-item[1], item[0])))


def _canonical(name: str, catalog: Catalog) -> str:
    found = catalog.find(name)
    return found.name if found else name


def _all_queues(queues: tuple[QueueSpec, ...], jobs: Sequence[TraceJob]
                ) -> tuple[QueueSpec, ...]:
    """The configured queues plus an unlimited top-level queue for every other queue name in
    the trace (what the scheduler assumes for unknown queues, declared once)."""
    known = {q.name for q in queues}
    extra = sorted({j.queue for j in jobs} - known)
    return (*queues, *(QueueSpec(name) for name in extra))


def _node_sizes(cluster: Cluster) -> dict[str, int]:
    """The largest node, in devices, per accelerator type."""
    sizes: dict[str, int] = {}
    for node in cluster.nodes:
        if node.accelerator:
            sizes[node.accelerator] = max(sizes.get(node.accelerator, 0), node.devices)
    return sizes


CONTEXT_FREE_PLACERS = frozenset({"compact", "bestfit", "spread"})
"""Placements that never look at the cycle's other waiting jobs or its seed (random
placement draws from a seed that counts them, FGD and the packers score against their
shapes)."""


def _whole_need(job: Job) -> int:
    """Whole devices the job needs at least (its groups' smallest gangs; fractional groups
    count 0): a job cannot start while fewer are free."""
    return sum(group.floor_replicas * group.accelerators for group in job.groups
               if group.accelerator_milli == 1000)


def _within_free(waiting: list[Job], needs: list[int], free: int) -> list[Job]:
    """The jobs that may start in a cycle with `free` whole devices: a job of a shape whose
    earlier jobs in the cycle's order would, all started, leave it too few is left out (if
    one of them does not start, neither does it: with no preemption free devices only
    shrink within a cycle, and jobs of one shape fit alike)."""
    kept: list[Job] = []
    started: dict[int, int] = {}
    for job, needed in zip(waiting, needs, strict=True):
        if needed:
            count = started.get(job.shape_id, 0) + 1
            if count * needed > free:
                continue
            started[job.shape_id] = count
        kept.append(job)
    return kept


def _idle_cycles_skippable(policy: Policy, queues: tuple[QueueSpec, ...]) -> bool:
    """Whether a cycle in which no waiting job fits the free devices and none preempts by
    priority can be skipped: it runs only the rank and queue phases (no rebalancing move),
    cannot preempt for a service class (no `order_preemption`) or reclaim borrowed quota
    (no queue with a guarantee or a borrowing limit)."""
    return (set(policy.phases) <= {RANK, QUEUE} and not policy.order_preemption
            and all(queue.unlimited for queue in queues))


def _line_blocks(policy: Policy, config: SimConfig, queues: tuple[QueueSpec, ...]) -> bool:
    """Whether a waiting head that lacks free devices surely blocks every later job: strict
    order (head of line, no backfill, the simulator's window in the cycle's order) and no
    miss other than for capacity (no failures, no quota)."""
    return (policy.head_of_line_blocks and not policy.backfill
            and _in_cycle_order(policy, config) and config.failures is None
            and all(queue.unlimited for queue in queues))


def _in_cycle_order(policy: Policy, config: SimConfig) -> bool:
    """Whether the simulator's window lists the waiting jobs in the order the cycle takes
    them (sorted by the policy's key, rank included; no fair-share interleaving of queues,
    no learned service classes)."""
    return bool(config.queue_depth) and not policy.fair_share and not policy.order.classed


def _devices(alloc: Allocation) -> float:
    return sum(len(r.devices) * r.milli / 1000 for r in alloc.replicas)


def simulate(jobs: Sequence[TraceJob], cluster: Cluster, policy: str | Policy = "fifo",
             config: SimConfig | None = None, *, catalog: Catalog | None = None,
             progress: Progress | None = None) -> SimResult:
    """Replay `jobs` on `cluster` under `policy` (overriding `config.policy`)."""
    chosen = replace(config or SimConfig(), policy=policy)
    return Simulator(jobs, cluster, chosen, catalog).run(progress)
