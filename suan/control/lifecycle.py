"""A job's lifecycle: its states and the transitions allowed between them.

    pending -> scheduled -> running -> succeeded | failed | cancelled | timeout
               scheduled -> pending                (the engine refused the launch)
                                    -> restarting -> pending     (a rank failed; gang restart)
                                    -> preempted  -> scheduled   (stopped for another job)
                                    -> pending                   (drained off its node)

`pending`, `preempted` and `restarting` (once its backoff is over) wait for the scheduler;
`scheduled` and `running` hold devices. `succeeded`, `failed`, `cancelled` and `timeout` (a run
outlived its time limit, `suan.control.time_limits`) are final.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    RESTARTING = "restarting"
    TIMEOUT = "timeout"

    @property
    def final(self) -> bool:
        return self in FINAL

    @property
    def holds_devices(self) -> bool:
        return self in (JobState.SCHEDULED, JobState.RUNNING)

    @property
    def waiting(self) -> bool:
        return self in (JobState.PENDING, JobState.PREEMPTED, JobState.RESTARTING)


FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT})

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.SCHEDULED, JobState.CANCELLED}),
    JobState.SCHEDULED: frozenset(
        {
            JobState.RUNNING,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.RESTARTING,
            JobState.PENDING,
            JobState.TIMEOUT,
        }
    ),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.PREEMPTED,
            JobState.RESTARTING,
            JobState.PENDING,
            JobState.TIMEOUT,
        }
    ),
    JobState.PREEMPTED: frozenset({JobState.SCHEDULED, JobState.CANCELLED}),
    JobState.RESTARTING: frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.TIMEOUT: frozenset(),
}


class TransitionError(ValueError):
    """A transition the lifecycle does not allow (a bug in the caller, never user input)."""


def check_transition(current: str, target: str) -> JobState:
    """The target state, or TransitionError when `current -> target` is not allowed."""
    source, goal = JobState(current), JobState(target)
    if goal not in TRANSITIONS[source]:
        raise TransitionError(f"a {source} job cannot become {goal}")
    return goal


def restart_backoff_s(restarts: int, base_s: float, cap_s: float = 60.0) -> float:
    """Seconds to wait before restart number `restarts` (1, 2, ...): base, 2×base, 4×base..."""
    return min(cap_s, base_s * 2 ** max(0, restarts - 1))


STEADY_RUN_S = 600.0
"""An attempt that ran at least this long before it failed was a steady run, and the restart
after it waits only the base backoff: its failure is a new fault, not the same crash looping
(Kubernetes resets its crash-loop backoff after 10 minutes of running for the same reason)."""


def gang_restart_delay_s(restarts: int, ran_s: float, base_s: float) -> float:
    """Seconds before restart number `restarts` of a gang whose failed attempt ran `ran_s`:
    the base after a steady run (`STEADY_RUN_S` or more), else `restart_backoff_s` (doubling
    for each restart, as quick failures in a row are)."""
    return base_s if ran_s >= STEADY_RUN_S else restart_backoff_s(restarts, base_s)


def after_exit(policy: str, succeeded: bool, restarts: int, max_restarts: int) -> JobState:
    """What a job whose ranks all stopped by themselves becomes, under its restart policy."""
    wants_restart = policy == "always" or (policy == "on-failure" and not succeeded)
    if wants_restart and restarts < max_restarts:
        return JobState.RESTARTING
    return JobState.SUCCEEDED if succeeded else JobState.FAILED
