"""The scheduler's view of a job: immutable, small, and cheap to compare.

A job is a gang of one or more replica groups. Each replica of a group needs `accelerators`
devices on one node (of one type from `accelerator_types`, in order of preference, or of any
type when the tuple is empty), plus CPU and memory; on a type whose link domain spans a
supernode, a replica larger than one node takes equal per-node parts on nodes of one
supernode (`suan.sched.span`). A fractional request (`accelerator_milli` below 1000) asks for
that share of a single device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

Placement = Literal["pack", "spread"]
_SHAPE_IDS: dict[tuple[object, ...], int] = {}
SCOPES: tuple[str, ...] = ("supernode", "rack", "block", "zone")


@dataclass(frozen=True)
class ReplicaGroup:
    """`replicas` identical replicas; elastic jobs may run with `min_replicas`..`replicas`."""

    name: str = "worker"
    replicas: int = 1
    accelerators: int = 1
    accelerator_milli: int = 1000
    accelerator_types: tuple[str, ...] = ()
    cpu_milli: int = 0
    memory_mib: int = 0
    min_replicas: int | None = None
    pids: int = 0
    planned_speeds: tuple[tuple[str, float], ...] = ()
    """The planner's tokens/s for this group's devices on each candidate type, resolved
    before scheduling for a job that names its `model` (`suan.plan.jobs`); () for none."""

    @property
    def devices(self) -> float:
        """Device-equivalents the whole group holds (fractions count as fractions)."""
        return self.replicas * self.accelerators * self.accelerator_milli / 1000

    @property
    def floor_replicas(self) -> int:
        return self.min_replicas if self.min_replicas is not None else self.replicas


@dataclass(frozen=True)
class TopologyConstraint:
    """Where the gang may sit.

    - `replica_in_domain`: each replica inside one intra-node link domain (required when set).
    - `within`: the whole job inside one supernode, rack, block or zone (None: anywhere).
    - `placement`: pack replicas onto few nodes and close tiers, or spread them out.
    """

    replica_in_domain: bool = False
    within: str | None = None
    placement: Placement = "pack"


@dataclass(frozen=True)
class Job:
    """A job as the scheduler sees it. `name` is unique among live jobs.

    Times are seconds on the injected clock. `runtime_estimate_s` is the user's estimate (used
    by backfill); `duration_s` is the true duration, known only to simulators (oracle policies).
    `attained_service_s` is device-seconds received before the current run (service-class and
    least-attained-service ordering; a running job's service grows from its allocation's start);
    `last_checkpoint_s` is when the job last saved its state (victim choice in preemption).
    `model` names the model it trains (a built-in planner name or a config path): when it
    accepts several accelerator types, the planner's throughput on each orders them; that
    advice is resolved before scheduling onto each group's `planned_speeds`, and
    `planner_version` records which planner gave it (empty: none asked).
    `type_speeds` is the job's own measured relative throughput per accelerator type, as
    (canonical type name, speed > 0) pairs; only ratios matter. When given it orders the types
    the job is tried on (fastest first, unlisted types after, in the listed order) and lets a
    heterogeneity-aware policy move the job to a faster type (`suan.sched.hetero`).
    `series` names the series the job belongs to in its queue (a sweep, an array, repeated
    runs of one script; empty for none): a policy with service classes predicts its need from
    its finished siblings' (`suan.sched.service`).
    `image` is the container image the job's ranks run in, on engines that run containers
    (Kubernetes); empty for none.
    `processes` says who starts a replica's processes: `per-replica` (Suan starts one, which
    sees all of the replica's devices and may start more itself, e.g. torchrun
    --nproc-per-node) or `per-device` (Suan starts one process per device).
    `time_limit_s` bounds each run (None: unbounded): the control plane stops a run that
    exceeds it, and backfill takes it as the run's length when no estimate is given
    (`run_bound_s`).
    `no_progress_timeout_s` is how long a rank that reported progress may go without reporting
    more before its gang is restarted as hung (None: the server's default).
    """

    name: str
    groups: tuple[ReplicaGroup, ...]
    queue: str = "default"
    user: str = ""
    priority: int = 0
    preemptible: bool = True
    submit_time: float = 0.0
    runtime_estimate_s: float | None = None
    duration_s: float | None = None
    checkpoint_interval_s: float | None = None
    attained_service_s: float = 0.0
    topology: TopologyConstraint = field(default_factory=TopologyConstraint)
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    restart_policy: str = "on-failure"
    max_restarts: int = 3
    model: str | None = None
    type_speeds: tuple[tuple[str, float], ...] = ()
    series: str = ""
    image: str = ""
    processes: str = "per-replica"
    planner_version: str = ""
    no_progress_timeout_s: float | None = None
    time_limit_s: float | None = None
    if TYPE_CHECKING:
        shape_id: int  # set by __post_init__: a small process-wide id of `shape`

    @cached_property
    def devices(self) -> float:
        """Device-equivalents the whole job holds (computed once: the groups are fixed)."""
        return sum(group.devices for group in self.groups)

    @property
    def shape(self) -> tuple[object, ...]:
        """A key equal for jobs that every placement treats alike: the replica groups, the
        topology constraint, the runtime estimate, the model and the per-type speeds, own and
        planned (name, queue and priority aside)."""
        groups = tuple(
            (g.replicas, g.accelerators, g.accelerator_milli, g.accelerator_types, g.cpu_milli,
             g.memory_mib, g.min_replicas, g.planned_speeds)
            for g in self.groups
        )
        t = self.topology
        return (groups, t.replica_in_domain, t.within, t.placement, self.runtime_estimate_s,
                self.model, self.type_speeds, self.time_limit_s)

    @property
    def run_bound_s(self) -> float | None:
        """How long one run of the job lasts at most, as far as the scheduler may count on:
        its runtime estimate, else its time limit (a run is stopped there), else None."""
        if self.runtime_estimate_s is not None:
            return self.runtime_estimate_s
        return self.time_limit_s

    def __post_init__(self) -> None:
        # The shape is part of what a job is: its id is set when the job is made (a plain
        # attribute outside the dataclass fields), so a cycle reads it at attribute speed.
        self.__dict__["shape_id"] = _SHAPE_IDS.setdefault(self.shape, len(_SHAPE_IDS))

    def __getattr__(self, name: str) -> object:
        """`shape_id` of a job restored from a pickle (ids are process-local)."""
        if name == "shape_id":
            self.__post_init__()
            return self.__dict__["shape_id"]
        raise AttributeError(name)

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the process-local shape id."""
        state = dict(self.__dict__)
        state.pop("shape_id", None)
        return state

    def with_priority(self, priority: int) -> Job:
        """This job with another priority (a scheduler's view of it; the priority is no part
        of the shape, so the copy keeps the shape id without recomputing it)."""
        view = object.__new__(Job)
        view.__dict__.update(self.__dict__)
        view.__dict__["priority"] = priority
        return view

    def speed_on(self, accelerator: str | None) -> float | None:
        """The job's measured relative speed on `accelerator`, or None when it has none."""
        for name, speed in self.type_speeds:
            if name == accelerator:
                return speed
        return None

    @property
    def replicas(self) -> int:
        return sum(group.replicas for group in self.groups)

    def accepts(self, accelerator: str | None) -> bool:
        """True when every group that needs devices can use `accelerator`."""
        return all(
            accelerator in group.accelerator_types
            for group in self.groups
            if group.accelerators and group.accelerator_types
        )
