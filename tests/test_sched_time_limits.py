"""Backfill with time limits: where a job gives no runtime estimate, its time limit bounds its
run (a run is stopped there), both for a running job's expected end and for a waiting job's
claim to run before a reservation; an estimate, where given, still decides."""

from __future__ import annotations

from dataclasses import replace

from sched_helpers import cluster, job, node, running, snapshot

from suan.sched import WaitCode, decide


def limited(name: str, limit: float | None, **kwargs: object):
    return replace(job(name, **kwargs), time_limit_s=limit)  # type: ignore[arg-type]


def two_nodes():
    return cluster(node("n0"), node("n1", rack="r1"))


def test_a_running_job_with_a_time_limit_and_no_estimate_ends_at_its_limit():
    busy = running(limited("busy", 1800.0, devices=8), ("n0", tuple(range(8))), start=100.0)
    head = job("head", replicas=2, devices=8)
    decisions = decide(snapshot(two_nodes(), busy, now=200.0), [head], "backfill")
    reason = decisions.reasons()["head"]
    assert reason.code == WaitCode.RESERVATION
    assert "t=1900" in reason.reason, "start 100 + limit 1800, not the assumed day"
    unlimited = running(job("busy", devices=8), ("n0", tuple(range(8))), start=100.0)
    assumed = decide(snapshot(two_nodes(), unlimited, now=200.0), [head], "backfill")
    assert "t=86500" in assumed.reasons()["head"].reason


def test_a_waiting_job_backfills_when_its_time_limit_ends_before_the_reservation():
    busy = running(job("busy", devices=8, estimate=3600.0), ("n0", tuple(range(8))))
    jobs = [
        job("head", replicas=2, devices=8, submit=0),
        limited("short", 600.0, devices=4, submit=1),
        limited("long", 7200.0, devices=4, submit=2),
        job("unbounded", devices=4, submit=3),
    ]
    decisions = decide(snapshot(two_nodes(), busy), jobs, "backfill")
    reasons = decisions.reasons()
    assert reasons["head"].code == WaitCode.RESERVATION
    assert list(decisions.started()) == ["short"]
    assert reasons["long"].code == WaitCode.RESERVED
    assert reasons["unbounded"].code == WaitCode.RESERVED


def test_an_estimate_decides_over_a_longer_time_limit():
    busy = running(job("busy", devices=8, estimate=3600.0), ("n0", tuple(range(8))))
    jobs = [
        job("head", replicas=2, devices=8, submit=0),
        limited("estimated", 7200.0, devices=4, submit=1, estimate=600.0),
    ]
    decisions = decide(snapshot(two_nodes(), busy), jobs, "backfill")
    assert "estimated" in decisions.started()
