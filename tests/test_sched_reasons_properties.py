"""Properties of the reasons and of time sharing inside a queue, over generated states.

- Every job left pending carries a code from the scheduler's closed list (and its JSON form
  is that code); `unschedulable` exactly when no accepted type of the registered cluster
  could ever hold the job, `health` only when the registered cluster could but the ready
  nodes could not.
- No running job is preempted by a job of its own queue and priority before its run has
  lasted the policy's minimum. The states are built so that about half of them must preempt
  (a cluster full of jobs that are eligible victims); `hypothesis.event` records which
  examples preempted (run pytest with --hypothesis-show-statistics to see the shares).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sched_helpers import job, node, running, snapshot

from suan.catalog import default_catalog
from suan.cluster.model import Cluster, NodeHealth
from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.jobs.queue import QueueSpec
from suan.sched import WaitCode, decide
from suan.sched.decisions import SCHEDULER_CODES
from suan.sched.policy import get_policy

TYPES = ("H100", "910B", "P800", "910C")
ASKED = ((), ("H100",), ("910B", "H100"), ("P800",), ("910C",), ("MLU590",))


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    nodes = []
    for index in range(draw(st.integers(1, 6))):
        accel = draw(st.sampled_from(TYPES))
        devices = draw(st.sampled_from([None, None, 4]))
        health = draw(st.sampled_from(list(NodeHealth)))
        bad = draw(st.sampled_from([(), (), (0,)]))
        made = node(f"n{index}", accel, devices, rack=f"r{index // 2}", health=health)
        nodes.append(replace(made, unhealthy_devices=bad))
    return Cluster(nodes)


@st.composite
def pending_jobs(draw: st.DrawFn) -> list[Job]:
    made = []
    for index in range(draw(st.integers(1, 8))):
        devices = draw(st.sampled_from([1, 1, 2, 4, 8, 8, 12, 16]))
        share = draw(st.sampled_from([1.0, 1.0, 0.5])) if devices == 1 else 1.0
        replicas = draw(st.sampled_from([1, 1, 2, 2, 3, 4, 8]))
        made.append(job(
            f"j{index}", replicas=replicas, devices=devices, share=share,
            types=draw(st.sampled_from(ASKED)), submit=float(index),
            within=draw(st.sampled_from([None, None, "rack"])),
            priority=draw(st.integers(0, 1)),
            min_replicas=draw(st.sampled_from([None, 1])) if replicas > 1 else None,
        ))
    return made


def _accepted(the_job: Job, the_cluster: Cluster) -> list[str]:
    group = the_job.groups[0]
    present = {n.accelerator for n in the_cluster.nodes if n.accelerator}
    return list(group.accelerator_types) if group.accelerator_types else sorted(present)


def _holds(nodes: list[tuple[int, int]], replicas: int, devices: int, whole: bool) -> bool:
    """Whether nodes given as (devices, usable devices) could hold the group when empty, by
    counts alone."""
    if not nodes:
        return False
    largest = max(usable for _, usable in nodes)
    return devices <= largest and (not whole or replicas * devices <= sum(
        usable for _, usable in nodes))


def _fits(the_job: Job, the_cluster: Cluster, *, ready_only: bool) -> bool:
    """Whether some accepted type could hold the job's floor: on every registered node (all
    devices; inside one label of its `within` tier, for whole devices), or only on ready nodes'
    healthy devices."""
    group = the_job.groups[0]
    whole = group.accelerator_milli == 1000
    for accelerator in _accepted(the_job, the_cluster):
        of_type = [n for n in the_cluster.nodes if n.accelerator == accelerator]
        if ready_only:
            counts = [(n.devices, n.devices - len(n.unhealthy_devices)) for n in of_type
                      if n.health.schedulable]
        else:
            counts = [(n.devices, n.devices) for n in of_type]
        within = the_job.topology.within
        if within and whole and not ready_only:  # the whole gang inside one label
            labels = {getattr(n, within) for n in of_type}
            inside = [[c for c, n in zip(counts, of_type, strict=True)
                       if getattr(n, within) == label] for label in labels]
            if any(_holds(part, group.floor_replicas, group.accelerators, whole)
                   for part in inside):
                return True
        elif _holds(counts, group.floor_replicas, group.accelerators, whole):
            return True
    return False


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(the_cluster=clusters(), pending=pending_jobs(),
       policy=st.sampled_from(["default", "fifo", "fifo-besteffort", "backfill", "fifo-fgd"]))
def test_every_wait_has_a_code_from_the_closed_list(the_cluster: Cluster, pending: list[Job],
                                                     policy: str) -> None:
    # A first cycle over the same jobs, under other names, makes the running work.
    earlier = [replace(j, name=f"old-{j.name}") for j in pending[: len(pending) // 2]]
    first = decide(snapshot(the_cluster), earlier, "fifo-besteffort")
    busy = [Allocation(start.job, start.replicas, 0.0) for start in first.starts]
    decisions = decide(snapshot(the_cluster, *busy, now=100.0), pending, policy)
    by_name = {j.name: j for j in pending}
    for wait in decisions.pending:
        assert isinstance(wait.code, WaitCode) and wait.code in SCHEDULER_CODES
        assert wait.reason
        event(f"code {wait.code}")
        the_job = by_name[wait.job]
        never = not _fits(the_job, the_cluster, ready_only=False)
        assert (wait.code == WaitCode.UNSCHEDULABLE) == never, wait
        if wait.code == WaitCode.HEALTH:
            assert not _fits(the_job, the_cluster, ready_only=True), wait
    for entry in decisions.to_dict()["pending"]:
        assert entry["code"] in {str(code) for code in SCHEDULER_CODES}


# ---------------------------------------------------------------------- time sharing
MINIMUMS = (60.0, 300.0, 1800.0)
RAN = (0.0, 30.0, 59.0, 60.0, 299.0, 300.0, 900.0, 1799.0, 1800.0, 7200.0)
NOW = 100_000.0


@st.composite
def time_shared_states(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    """A cluster full of running jobs of one queue, and jobs of that queue waiting. When
    `forced`, the first node holds one eligible victim (run past the minimum, in a worse
    service class than the first waiting job, which fits in its place): then the first
    waiting job must start, by preempting."""
    minimum = draw(st.sampled_from(MINIMUMS))
    forced = draw(st.booleans())
    allocs = []
    for index in range(draw(st.integers(1, 4))):
        split = draw(st.booleans())
        for part, devices in enumerate((4, 4) if split else (8,)):
            ran = draw(st.sampled_from(RAN))
            if forced and index == 0:
                ran = max(ran, minimum)
            attained = draw(st.sampled_from([0.0, 3_000.0, 40_000.0, 400_000.0]))
            if forced and index == 0:
                attained = max(attained, 40_000.0)
            old = job(f"old{index}-{part}", devices=devices, queue="q",
                      priority=0 if forced and index == 0 else draw(st.integers(0, 1)),
                      attained=attained)
            slots = tuple(range(part * devices, (part + 1) * devices))
            allocs.append(running(old, (f"n{index}", slots), start=NOW - ran))
    count = 1 if forced else draw(st.integers(1, 3))
    waiting = [job(f"new{i}", devices=draw(st.sampled_from([1, 2, 4, 8])), queue="q",
                   priority=0 if forced else draw(st.integers(0, 2)),
                   attained=0.0 if forced else draw(st.sampled_from([0.0, 5e4])),
                   submit=float(i))
               for i in range(count)]
    if forced:
        first_devices = 4 if len(allocs) > 1 and allocs[1].job.name == "old0-1" else 8
        waiting[0] = replace(waiting[0], groups=(replace(waiting[0].groups[0],
                                                         accelerators=first_devices),))
    nodes = Cluster(tuple(node(f"n{i}", "V100", 8)
                          for i in range(len({a.replicas[0].node for a in allocs}))))
    return minimum, forced, nodes, allocs, waiting


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(state=time_shared_states())
def test_no_same_queue_preemption_before_the_minimum_run(state) -> None:  # type: ignore[no-untyped-def]
    minimum, forced, nodes, allocs, waiting = state
    default = get_policy("default")
    policy = replace(default, preempt=replace(default.preempt, class_min_run_s=minimum))
    the_snapshot = snapshot(nodes, *allocs, queues=(QueueSpec("q"),), now=NOW)
    decisions = decide(the_snapshot, waiting, policy)
    by_name = {a.job.name: a for a in allocs}
    priorities = {j.name: j.priority for j in waiting}
    same_queue = 0
    for preemption in decisions.preemptions:
        victim = by_name[preemption.job]
        if victim.job.priority == priorities[preemption.for_job]:
            same_queue += 1
            assert NOW - victim.start_time >= minimum, preemption
            assert "after it ran" in preemption.reason and "same queue" in preemption.reason
    if forced:
        assert "new0" in decisions.started(), decisions
    event("preempts" if decisions.preemptions else "no preemption")
    event("same-queue preemption" if same_queue else "no same-queue preemption")
    event("forced" if forced else "free")


def test_the_catalog_knows_the_types_the_properties_use():
    catalog = default_catalog()
    assert all(catalog.find(name) for name in (*TYPES, "MLU590", "V100"))
