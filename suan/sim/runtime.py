"""How fast a job runs where it is placed, and what stopping it costs.

- Speed: a job's exclusive run time on accelerator type T is its per-type duration when the
  trace gives one (Gavel), else `duration_s * speed(reference) / speed(T)`, with speeds from
  the catalog's `relative_speed` (overridable). A gang that spans link domains, nodes or racks
  runs slower by the matching `Slowdown` factor (the widest span counts).
- Checkpoints: with `checkpoint_interval_s` I > 0 a running job saves its progress every I
  seconds of work; 0 means every instant (stopping loses nothing, the peers' "free
  preemption"); None means never (a stopped job restarts from scratch).
- A restarted job spends `restart_overhead_s` before it makes progress again.
- A job whose trace names a checkpoint cost C (`TraceJob.checkpoint_cost_s`) saves every tau
  seconds of work, tau its trace's fixed interval or else Daly's interval for C and its MTBF
  under the failure model (`checkpoint_plan`, the rule the control plane advises); each save
  blocks it C seconds, so it runs (tau + C) / tau times longer and a stop keeps the work of
  the whole periods of tau + C seconds behind it. Jobs without a cost use
  `checkpoint_interval_s` as above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from suan.catalog import Catalog
from suan.checkpoint_interval import best_interval_s
from suan.cluster.model import Cluster
from suan.cluster.snapshot import ReplicaPlacement
from suan.sim.failures import FailureModel
from suan.sim.workload import TraceJob

REFERENCE = "V100-16GB"


@dataclass(frozen=True)
class Slowdown:
    """Run-time multipliers (>= 1) for a gang spread over link domains, nodes or racks."""

    cross_domain: float = 1.0
    cross_node: float = 1.0
    cross_rack: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Slowdown:
        """From `domain=1.05,node=1.2,rack=1.4` (any subset); ValueError for bad text."""
        names = {"domain": "cross_domain", "node": "cross_node", "rack": "cross_rack"}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, number = part.partition("=")
            if key.strip() not in names:
                raise ValueError(f"unknown span {key!r}; use domain, node or rack")
            values[names[key.strip()]] = float(number)
        return cls(**values)


NO_SLOWDOWN = Slowdown()


@dataclass(frozen=True)
class RuntimeModel:
    """Placement-dependent speed and the cost of stopping a job."""

    reference: str = REFERENCE
    slowdown: Slowdown = field(default_factory=Slowdown)
    checkpoint_interval_s: float | None = 0.0
    restart_overhead_s: float = 0.0
    speeds: Mapping[str, float] = field(default_factory=dict)

    def speed(self, accelerator: str, catalog: Catalog) -> float:
        """Relative throughput of a type (the override, else the catalog's relative_speed)."""
        if accelerator in self.speeds:
            return self.speeds[accelerator]
        found = catalog.find(accelerator)
        return found.relative_speed if found else 1.0

    def exclusive_s(self, job: TraceJob, accelerator: str, catalog: Catalog) -> float:
        """The job's run time alone on `accelerator`, before any spread slowdown."""
        if job.durations:
            for name, seconds in job.durations.items():
                if name == accelerator or catalog.find(name) is catalog.find(accelerator):
                    return seconds
        ratio = self.speed(self.reference, catalog) / self.speed(accelerator, catalog)
        return job.duration_s * ratio

    def spread_factor(self, cluster: Cluster, replicas: tuple[ReplicaPlacement, ...]) -> float:
        """The slowdown of a placement: the widest span it crosses."""
        if self.slowdown == NO_SLOWDOWN:
            return 1.0
        nodes = {r.node for r in replicas}
        if len(nodes) > 1:
            racks = {cluster.node(n).rack for n in nodes}
            if len(racks) > 1 or "" in racks:
                return self.slowdown.cross_rack
            return self.slowdown.cross_node
        if self.slowdown.cross_domain == 1.0 or not replicas:
            return 1.0
        node = cluster.node(replicas[0].node)
        used = {d for r in replicas for d in r.devices}
        spanned = sum(1 for domain in node.domains if used.intersection(domain))
        return self.slowdown.cross_domain if spanned > 1 else 1.0

    def run_seconds(self, job: TraceJob, accelerator: str, cluster: Cluster,
                    replicas: tuple[ReplicaPlacement, ...], catalog: Catalog) -> float:
        """Seconds of work the whole job needs on this placement."""
        return self.exclusive_s(job, accelerator, catalog) * self.spread_factor(cluster, replicas)

    def kept_work_s(self, worked_s: float, interval: float | None) -> float:
        """Of `worked_s` seconds of work since the last restart, the part a checkpoint saved."""
        if interval is None:
            return 0.0
        if interval <= 0:
            return worked_s
        return math.floor(worked_s / interval) * interval


def checkpoint_plan(
    trace: TraceJob, nodes: int, failures: FailureModel | None
) -> tuple[float, float] | None:
    """(interval tau, cost C) of a job whose trace names a checkpoint cost or interval; None
    for the others (the runtime model's interval applies). Without a failure model the
    default node MTBF gives the job's MTBF."""
    cost = trace.checkpoint_cost_s or 0.0
    if trace.checkpoint_interval_s:
        return trace.checkpoint_interval_s, cost
    if cost <= 0:
        return None
    mtbf = (failures or FailureModel()).job_mtbf_s(nodes, trace.num_gpus)
    return best_interval_s(cost, mtbf), cost
