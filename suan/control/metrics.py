"""The server's Prometheus metrics: one registry per server (never the process-wide default,
so that one process may hold several servers), with the metrics counted where things happen.

    metrics = ControlMetrics()                  # the reconciler makes one
    metrics.scheduling_pass(0.012, placed=3)    # after each scheduling pass
    metrics.job_running(row, now)               # a launch's ranks run
    metrics.run_ended(target, why)              # a run's ranks are all gone
    generate_latest(metrics.registry)           # the text `/metrics` answers with

The gauges read from the store and the inventory at scrape time live in
suan.control.metrics_collector; the route and its scrape token in suan.control.metrics_api.
Every label takes its values from a closed list (states, wait codes, causes below) or from
what the operator names (queues, accelerator types): never a job id, a user or free text.
docs/metrics.md lists every metric.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

from suan.control.lifecycle import JobState
from suan.sched.budget import MAX_STARTS

PASS_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""A pass over a short queue takes milliseconds, one over 10,000 waiting jobs about 0.1 s and
over 100,000 1-2 s (docs/control-plane.md): decades from 1 ms to 10 s, three buckets each."""
PLACEMENT_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, MAX_STARTS)
"""Jobs placed by one pass: none in most passes, at most the cycle's budget of starts."""
WAIT_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400,
                        3 * 86400)
"""Submission to first run: seconds on an idle cluster to days on a busy one."""


class RestartCause(StrEnum):
    """Why a run ended unfinished and its job waits to run again: the closed list of the
    `cause` label of `suan_job_restarts_total`."""

    FAILURE = "failure"  # a rank exited with an error: a gang restart, counted in maxRestarts
    HANG = "hang"  # a rank reported no progress for the job's timeout (suan.control.hangs)
    LOST = "lost"  # the ranks vanished or their node went down
    DRAIN = "drain"  # the node was drained (suan.control.drain); no restart counted
    PREEMPTION = "preemption"  # stopped for another job (or to move to another type)
    REQUEUE = "requeue"  # the run was lost and the job requeued without a restart counted


HANG_MARK = " hung: "
"""What suan.control.gang_watch writes in the stop reason of a gang it stops as hung."""
NODE_MARK = "node "
"""How the stop reasons of a drain (suan.control.drain) and of a lost node begin."""
LOST_WORDS = ("ranks lost", " is down ")


def restart_cause(target: JobState, why: str) -> RestartCause | None:
    """The cause of a run that ends in `target` for reason `why` (the reconciler's words),
    or None when the job does not wait to run again (it finished, failed or was cancelled)."""
    if target == JobState.PREEMPTED:
        return RestartCause.PREEMPTION
    if target == JobState.PENDING:
        return RestartCause.DRAIN if why.startswith(NODE_MARK) else RestartCause.REQUEUE
    if target != JobState.RESTARTING:
        return None
    if HANG_MARK in why:
        return RestartCause.HANG
    if any(words in why for words in LOST_WORDS) or not why:
        return RestartCause.LOST
    return RestartCause.FAILURE


class ControlMetrics:
    """The event metrics of one server and the registry `/metrics` reads (with the process
    collector: CPU, memory, open files of the server process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.pass_seconds = Histogram(
            "suan_scheduling_pass_seconds",
            "Duration of the reconciler's scheduling passes (reading the queue, the "
            "scheduler's cycle, recording its decisions).",
            buckets=PASS_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.pass_placements = Histogram(
            "suan_scheduling_pass_placements",
            "Jobs placed (marked scheduled) by each scheduling pass.",
            buckets=PLACEMENT_BUCKETS,
            registry=self.registry,
        )
        self.last_pass = Gauge(
            "suan_scheduling_last_pass_timestamp_seconds",
            "When this server's reconciler last ran a scheduling pass (Unix time).",
            registry=self.registry,
        )
        self.submit_to_running = Histogram(
            "suan_job_submit_to_running_seconds",
            "Time from a job's submission to its first run's ranks running, by queue.",
            ["queue"],
            buckets=WAIT_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.restarts = Counter(
            "suan_job_restarts",
            "Runs that ended unfinished and left their job waiting to run again, by cause.",
            ["cause"],
            registry=self.registry,
        )
        for cause in RestartCause:
            self.restarts.labels(cause=cause.value)

    def scheduling_pass(self, seconds: float, placed: int, at: float | None = None) -> None:
        """Count one scheduling pass that took `seconds` and placed `placed` jobs."""
        self.pass_seconds.observe(seconds)
        self.pass_placements.observe(placed)
        self.last_pass.set(time.time() if at is None else at)

    def job_running(self, row: Any, now: float) -> None:
        """Count a job whose ranks run (`row`: its id, queue, submit time and attempt): its
        wait from submission when this is its first attempt."""
        if row.attempt == 1:
            self.submit_to_running.labels(queue=row.queue).observe(
                max(0.0, now - row.submit_time)
            )

    def run_ended(self, target: JobState, why: str) -> None:
        """Count a run that ended in `target` for reason `why`, when its job runs again."""
        cause = restart_cause(target, why)
        if cause is not None:
            self.restarts.labels(cause=cause.value).inc()
