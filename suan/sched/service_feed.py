"""What the service-class learner hears of jobs: the one feed of the control plane and the
simulator into `suan.sched.service.ServiceHistory`.

An observation is a job's *attained service*: the device-seconds of all its runs, the ones a
preemption, a failure or a move cut short included (`Job.attained_service_s` before the current
run, `Allocation.attained_at(now)` with it). That is the quantity a job's class is looked up
by (`ServiceClasses.level`), so it is the quantity the distribution must describe: learning
from the last run only would teach that a job preempted twice after two hours each needed two
hours, while its class is read at six.

- A job that finished gives its need: its attained service at the end (`record_finish`).
- A job that has run and not finished (running now, or waiting again after a preemption,
  failure or move) needs more than it has had: a right-censored observation, read when the
  classes are relearned (`relearn`, through `kaplan_meier`). Leaving these out learns only
  from the jobs short enough to have finished already (in a window of recent finishes, the
  long jobs are still running): the needs come out too short, and a job that has outlived
  every recent finish looks like one that never ends (the last class).
- A job that never ran says nothing. The control plane leaves out jobs that failed or were
  cancelled for good: what ended them (a bug, a user) says nothing of what a run needs.

When: finishes are recorded as they happen; the unfinished jobs are read, and the queues and
series that are due relearned, after a scheduling cycle that leaves jobs waiting, so that the
next cycle uses the new classes (while nobody waits, the order does not matter). Both callers
do it at the same point, so a replay learns what the live cluster would have learned.
"""

from __future__ import annotations

from collections.abc import Iterable

from suan.cluster.snapshot import Allocation
from suan.jobs.model import Job
from suan.sched.service import ServiceHistory


def record_finish(history: ServiceHistory, job: Job, attained_s: float) -> None:
    """`job` finished after attaining `attained_s` device-seconds over all its runs."""
    history.add(job.queue, attained_s, job.series)


def record_stop(history: ServiceHistory, job: Job, attained_s: float) -> None:
    """`job` stopped unfinished (preempted, failed, moved) after `attained_s` device-seconds:
    a member of a series tells the series, when it stops, that it needs more than that (as
    `relearn` tells it of the members running)."""
    history.running(job.queue, job.series, attained_s)


def relearn(history: ServiceHistory, now: float, running: Iterable[Allocation],
            stopped: Iterable[Job]) -> bool:
    """Tell `history` what the unfinished jobs have attained by `now` and relearn the queues and
    series that are due; True when the classes changed.

    `running`: the jobs running now (their attained service counts this run); `stopped`: jobs
    waiting, of which those that have run (`attained_service_s` > 0) count. Each is a
    censored need of its queue. A running member of a series makes its siblings rank as
    needing at least a fraction of what it has had (`series_classes`; a stopped one told
    its series when it stopped, `record_stop`)."""
    seen = [(alloc.job, alloc.attained_at(now)) for alloc in running]
    for job, attained in seen:
        if job.series:
            history.running(job.queue, job.series, attained)
    seen += [(job, job.attained_service_s) for job in stopped if job.attained_service_s > 0]
    if not history.pending:
        return False
    unfinished: dict[str, list[float]] = {}
    for job, attained in seen:
        unfinished.setdefault(job.queue, []).append(attained)
    return history.relearn(lambda queue: unfinished.get(queue, ()))
