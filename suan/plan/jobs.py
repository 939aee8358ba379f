"""Planner advice carried on jobs, resolved before scheduling.

The scheduler never calls the planner: a job that names its `model` and may run on several
accelerator types gets, on each device group, the planner's tokens/s for that group's devices
on each candidate type (`ReplicaGroup.planned_speeds`), and `Job.planner_version` records
which planner gave them. The control plane resolves them before each cycle for the cluster's
types (memoised per model, type and size, `suan.plan.use.type_speeds`); the dry-run
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
    groups = tuple(_advised(job.model, group, everywhere) for group in job.groups)
    if groups == job.groups and job.planner_version == PLANNER_VERSION:
        return job
    return replace(job, groups=groups, planner_version=PLANNER_VERSION)


def advise_all(jobs: Iterable[Job], types: Iterable[str]) -> list[Job]:
    """`with_planner_advice` for each job (jobs that name no model pass as they are)."""
    candidates = tuple(types)
    return [job if job.model is None else with_planner_advice(job, candidates)
            for job in jobs]


def _advised(model: str, group: ReplicaGroup, everywhere: tuple[str, ...]) -> ReplicaGroup:
    types = group.accelerator_types or everywhere
    if not group.accelerators or len(types) < 2:
        return group
    speeds = _speeds(model, tuple(types), group.replicas * group.accelerators)
    return group if speeds == group.planned_speeds else replace(group, planned_speeds=speeds)


def _speeds(model: str, types: tuple[str, ...], devices: int) -> tuple[tuple[str, float], ...]:
    from suan.plan.use import type_speeds

    try:
        return tuple(type_speeds(model, types, devices).items())
    except SuanError:
        return ()
