"""Planner advice carried on jobs, resolved before scheduling.

The scheduler never calls the planner: a job that names its `model` and may run on several
accelerator types gets, on each device group, the planner's tokens/s for that group's devices
on each candidate type (`ReplicaGroup.planned_speeds`, at the job's SUAN_SEQ and
SUAN_GLOBAL_BATCH), and `Job.planner_version` records
which planner gave them. The control plane resolves them before each cycle for the cluster's
types (memoised per model, type and size, `suan.plan.use.type_speeds`; `AdviceMemo` keeps
each waiting job's advised copy from pass to pass); the dry-run
`suan schedule` does the same.

    job = with_planner_advice(job, cluster_types(cluster))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from suan import __version__
from suan.cluster.model import Cluster
from suan.errors import SuanError
from suan.jobs.model import Job, ReplicaGroup

PLANNER_VERSION = f"suan-plan/{__version__}"
"""Recorded on every advised job (`Job.planner_version`)."""


def cluster_types(cluster: Cluster) -> tuple[str, ...]:
    """The accelerator types of the cluster's nodes that take work, sorted by name: the
    types a group that lists none may run on."""
    return tuple(sorted({node.accelerator for node in cluster.nodes
                         if node.accelerator is not None and node.health.schedulable}))


def with_planner_advice(job: Job, types: Iterable[str]) -> Job:
    """`job` with the planner's tokens/s on each device group that may run on two or more
    types (its listed types, else `types`), and the planner version; `job` itself when it
    names no model or carries its own measured speeds (which take precedence). A group on
    whose types the planner cannot say (unknown model or type) gets no speeds: the scheduler
    then keeps the listed order."""
    if job.model is None or job.type_speeds:
        return job
    everywhere = tuple(sorted(types))
    env = dict(job.env)
    groups = tuple(_advised(job.model, group, everywhere, env) for group in job.groups)
    if groups == job.groups and job.planner_version == PLANNER_VERSION:
        return job
    return replace(job, groups=groups, planner_version=PLANNER_VERSION)


def advise_all(jobs: Iterable[Job], types: Iterable[str]) -> list[Job]:
    """`with_planner_advice` for each job (jobs that name no model pass as they are)."""
    return AdviceMemo().advise(jobs, types)


class AdviceMemo:
    """`advise_all` for a caller that advises the same waiting jobs pass after pass (the
    control plane's reconciler): a job that is the very object it was last pass, for the same
    types, gets last pass's advised copy back instead of a new one. Only the jobs of the last
    call are kept."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Job, tuple[str, ...], Job]] = {}

    def advise(self, jobs: Iterable[Job], types: Iterable[str]) -> list[Job]:
        """As `advise_all(jobs, types)`."""
        candidates, kept = tuple(types), self._kept
        fresh: dict[str, tuple[Job, tuple[str, ...], Job]] = {}
        advised: list[Job] = []
        for job in jobs:
            if job.model is None:
                advised.append(job)
                continue
            found = kept.get(job.name)
            if found is None or found[0] is not job or found[1] != candidates:
                found = (job, candidates, with_planner_advice(job, candidates))
            fresh[job.name] = found
            advised.append(found[2])
        self._kept = fresh
        return advised


def _advised(model: str, group: ReplicaGroup, everywhere: tuple[str, ...],
             env: dict[str, str]) -> ReplicaGroup:
    types = group.accelerator_types or everywhere
    if not group.accelerators or len(types) < 2:
        return group
    speeds = _speeds(model, tuple(types), group.replicas * group.accelerators, env)
    return group if speeds == group.planned_speeds else replace(group, planned_speeds=speeds)


def _speeds(model: str, types: tuple[str, ...], devices: int,
            env: dict[str, str]) -> tuple[tuple[str, float], ...]:
    """Tokens/s per type at the job's SUAN_SEQ / SUAN_GLOBAL_BATCH (the workload its layout
    and its goodput MFU use too, `suan.plan.use.job_workload`)."""
    from suan.plan.use import job_workload, type_speeds

    try:
        seq, batch = job_workload(env)
        return tuple(type_speeds(model, types, devices, seq=seq, global_batch=batch).items())
    except SuanError:
        return ()
