"""The simulator leaves out cycles that can start and preempt nothing, and gives a cycle only
the waiting jobs that could start (`Simulator._may_start`), without changing a decision.

Each replay runs twice on the same contended stream: once as it runs by default and once
with the leaving-out turned off on that simulator; every job's first start, end, preemptions
and migrations must be equal, and the default run must have run fewer cycles where it
applies (policies without class preemption, reclaim or moves).
"""

from __future__ import annotations

import random

import pytest

from suan.cluster.generate import cluster_from_shorthand
from suan.sim.fingerprint import decision_record
from suan.sim.simulator import SimConfig, SimResult, Simulator
from suan.sim.workload import TraceJob

POLICIES = ("fifo", "fifo-besteffort", "sjf", "backfill", "fifo-random", "las-preemptive",
            "srtf-preemptive", "priority", "default")
SKIPPING = {"fifo", "fifo-besteffort", "sjf", "backfill", "fifo-random", "las-preemptive",
            "srtf-preemptive", "priority"}
"""The policies under which cycles are left out (`default` preempts by service class)."""


def contended_stream(seed: int = 7, count: int = 300) -> list[TraceJob]:
    """`count` jobs arriving faster than 3 nodes of 8 devices can run them: 1 to 16 devices,
    log-uniform durations from 2 minutes to 10 hours, a fifth at a higher priority."""
    rng = random.Random(seed)
    jobs, now = [], 0.0
    for index in range(count):
        now += rng.expovariate(1 / 120)
        jobs.append(TraceJob(
            job_id=f"j{index:04d}", submit_time=round(now),
            num_gpus=rng.choice((1, 1, 2, 4, 8, 16)),
            duration_s=round(120 * (300 ** rng.random())),
            priority=10 if rng.random() < 0.2 else 0,
        ))
    return jobs


def _replay(policy: str, leave_out: bool) -> SimResult:
    config = SimConfig(policy=policy, tick_s=None, queue_depth=32)
    simulator = Simulator(contended_stream(), cluster_from_shorthand("3x8xV100"), config)
    if not leave_out:
        simulator.idle_cycles_skippable = False
    return simulator.run()


@pytest.mark.parametrize("policy", POLICIES)
def test_leaving_out_cycles_and_jobs_changes_no_decision(policy):
    left_out, every = _replay(policy, True), _replay(policy, False)
    assert decision_record(left_out) == decision_record(every)
    if policy in SKIPPING:
        assert left_out.cycles < every.cycles
    else:
        assert left_out.cycles == every.cycles


def test_the_stream_contends_and_preempts():
    result = _replay("srtf-preemptive", True)
    assert sum(state.preemptions for state in result.jobs) > 0
    assert max(state.first_start - state.trace.submit_time for state in result.jobs) > 3600
