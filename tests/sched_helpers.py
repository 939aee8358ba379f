"""Small builders for scheduler scenarios: clusters, jobs and snapshots in a few lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from suan.catalog import default_catalog
from suan.cluster.model import Cluster, Node, NodeHealth
from suan.cluster.snapshot import Allocation, ReplicaPlacement, Snapshot
from suan.jobs.model import Job, ReplicaGroup, TopologyConstraint
from suan.jobs.queue import QueueSpec
from suan.sched import CycleState, Decisions, Pending, Policy, WaitCode
from suan.sched.cycle import WorkingState, collector_paused, new_cycle, run_phases
from suan.sched.order import ordered
from suan.sched.phases import consider, remembered
from suan.sched.sweep import deferred_reason


def node(name: str, accelerator: str = "H100", devices: int | None = None, *, rack: str = "r0",
         block: str = "b0", zone: str = "z0", supernode: str = "",
         health: NodeHealth = NodeHealth.READY) -> Node:
    accel = default_catalog().get(accelerator)
    count = devices if devices is not None else accel.devices_per_node
    return Node(name, accel.name, count, accel.domain_layout(count), cpu_milli=128_000,
                memory_mib=1 << 20, zone=zone, block=block, rack=rack, supernode=supernode,
                health=health)


def cluster(*nodes: Node) -> Cluster:
    return Cluster(nodes)


def job(name: str, replicas: int = 1, devices: int = 1, *, types: tuple[str, ...] = (),
        share: float = 1.0, queue: str = "default", priority: int = 0, submit: float = 0.0,
        estimate: float | None = None, duration: float | None = None,
        preemptible: bool = True, within: str | None = None, placement: str = "pack",
        in_domain: bool = False, checkpoint: float | None = None,
        attained: float = 0.0, min_replicas: int | None = None) -> Job:
    canonical = tuple(default_catalog().canonical(t) for t in types)
    group = ReplicaGroup(replicas=replicas, accelerators=devices,
                         accelerator_milli=round(share * 1000), accelerator_types=canonical,
                         min_replicas=min_replicas)
    return Job(name, (group,), queue=queue, priority=priority, submit_time=submit,
               runtime_estimate_s=estimate, duration_s=duration, preemptible=preemptible,
               checkpoint_interval_s=checkpoint, attained_service_s=attained,
               topology=TopologyConstraint(in_domain, within, placement))  # type: ignore[arg-type]


def running(the_job: Job, *slots: tuple[str, tuple[int, ...]], start: float = 0.0,
            checkpoint: float | None = None, milli: int = 1000) -> Allocation:
    replicas = tuple(ReplicaPlacement(0, name, devices, milli) for name, devices in slots)
    return Allocation(the_job, replicas, start_time=start, last_checkpoint_s=checkpoint)


def snapshot(the_cluster: Cluster, *allocs: Allocation, queues: tuple[QueueSpec, ...] = (),
             now: float = 0.0) -> Snapshot:
    queue_specs = queues or (QueueSpec("default"),)
    return Snapshot(the_cluster, tuple(allocs), queue_specs, now)


def devices_of(decisions, name: str) -> list[tuple[str, tuple[int, ...]]]:  # type: ignore[no-untyped-def]
    start = decisions.started()[name]
    return [(r.node, r.devices) for r in start.replicas]


@dataclass(frozen=True)
class PerJobQueue:
    """The queue phase as a plain walk, one job at a time: every pending job in `ordered`
    order gets its remembered verdict, else (while the budget lasts) is considered, else is
    deferred."""

    name: str = "queue"

    def run(self, cycle: CycleState) -> None:
        policy, decisions = cycle.policy, cycle.decisions
        for pending_job in ordered(cycle.pending, policy.order, cycle.quota, policy.fair_share,
                                   cycle.snapshot.service):
            verdict = remembered(cycle, pending_job)
            if verdict is None and len(decisions.starts) >= cycle.max_starts:
                verdict = Pending(pending_job.name, deferred_reason(cycle.max_starts),
                                  WaitCode.DEFERRED)
                decisions.deferred += 1
            elif verdict is None:
                verdict = consider(cycle, pending_job)
            if verdict is not None:
                decisions.pending.append(verdict)


def plain_walk(snap: Snapshot, pending: Sequence[Job], policy: Policy,
               max_starts: int) -> Decisions:
    """The reference cycle, which keeps no state: the policy's phases with the queue phase
    replaced by `PerJobQueue`."""
    per_job = replace(policy, phases=tuple(PerJobQueue() if phase.name == "queue" else phase
                                           for phase in policy.phases))
    running = snap.running_by_name
    waiting = [job for job in pending if job.name not in running]
    with collector_paused():
        cycle = new_cycle(snap, waiting, per_job, WorkingState.build(snap), dict(running),
                          max_starts)
        return run_phases(cycle)


def assert_same(got: Decisions, want: Decisions) -> None:
    assert got.starts == want.starts
    assert got.preemptions == want.preemptions
    assert got.reasons() == want.reasons()
    assert len(got.pending) == len(want.pending)
    assert got.reservation == want.reservation
    assert got.deferred == want.deferred
