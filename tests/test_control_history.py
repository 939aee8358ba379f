"""The control plane's side of the service-class feed, run deterministically (scripted executor,
fake clock): a job's service counts every run, and a preemption's devices go to the job it was
made for."""

from __future__ import annotations

from replay_helpers import ControlPlane

from suan.cluster.generate import cluster_from_shorthand
from suan.jobs.queue import DEFAULT_QUEUE, QueueSpec
from suan.sim import TraceJob

ONE_NODE = cluster_from_shorthand("1x8xV100")


def test_a_preempted_job_carries_its_service_into_its_next_run_and_the_history(tmp_path):
    low = TraceJob("low", 0.0, 1000.0, 8)
    high = TraceJob("high", 300.0, 100.0, 8, priority=100)
    plane = ControlPlane(tmp_path, ONE_NODE, (DEFAULT_QUEUE,), (low, high))
    try:
        plane.submit(low)
        plane.tick(0.0)
        plane.submit(high)
        plane.tick(300.0)
        assert plane.rows()["low"].attained_s == 8 * 300.0  # its first run, stopped
        plane.tick(400.0)  # high ends; low runs again
        restart = plane.reconciler.last_decisions.starts[0]
        assert (restart.job.name, restart.job.attained_service_s) == (
            plane.rows()["low"].id, 8 * 300.0)
        plane.tick(1400.0)
        assert plane.finished()
        rows = plane.rows()
    finally:
        plane.store.close()
    assert (rows["low"].attained_s, rows["high"].attained_s) == (8 * 1300.0, 8 * 100.0)
    assert plane.reconciler.service.samples["default"] == [800.0, 10_400.0]


def test_devices_freed_by_a_preemption_go_to_the_job_it_was_made_for(tmp_path):
    # research borrows the whole node; batch (no quota) cannot take it back, prod (a
    # guarantee of 8) reclaims it. Once research's job has stopped, batch's job would come
    # first by fair share (both queues hold nothing): the devices are prod's all the same.
    queues = (QueueSpec("batch"), QueueSpec("prod", guaranteed={"accelerators": 8}),
              QueueSpec("research"), DEFAULT_QUEUE)
    borrower = TraceJob("borrower", 0.0, 5000.0, 8, queue="research")
    waiting = TraceJob("waiting", 10.0, 50.0, 8, queue="batch")
    owner = TraceJob("owner", 20.0, 100.0, 8, queue="prod")
    plane = ControlPlane(tmp_path, ONE_NODE, queues, (borrower, waiting, owner))
    try:
        plane.run((borrower, waiting, owner))
    finally:
        plane.store.close()
    node = ONE_NODE.nodes[0].name
    everything = (node, tuple(range(8)))
    assert [d for d in plane.decisions if d[0] <= 120.0] == [
        (0.0, "start", "borrower", (everything,)),
        (20.0, "preempt", "borrower", ()),
        (20.0, "start", "owner", (everything,)),
        (120.0, "start", "waiting", (everything,)),
    ]
