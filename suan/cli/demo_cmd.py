"""`suan demo`: the scheduler at work on an example cluster, in three cycles.

1. t=0: a research organisation's queues and jobs arrive on a mixed H100 + Ascend 910B cluster.
2. t=1h: a second wave arrives — an urgent job that preempts the cheapest victims, a gang
   that cannot fit yet (it gets an EASY backfill reservation), and two small jobs: the short
   one backfills, the long one waits rather than delay the reservation.
3. t=3h: two jobs finished; the cycle starts what now fits.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.rule import Rule

from suan.cli.render import render_decisions
from suan.cluster.snapshot import Allocation, Snapshot
from suan.jobs.spec import load_documents, load_documents_text
from suan.sched import CarriedState, Decisions, schedule

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SECOND_WAVE = """
apiVersion: suan.ai/v1
kind: Job
metadata: {name: urgent-fix}
spec:
  queue: team-b
  priority: critical
  replicaGroups:
    - {name: worker, replicas: 4, accelerators: {count: 8, type: H100}}
  runtimeEstimate: 1h
---
apiVersion: suan.ai/v1
kind: Job
metadata: {name: scale-test}
spec:
  replicaGroups:
    - {name: trainer, replicas: 4, accelerators: {count: 8, type: H100}}
  runtimeEstimate: 12h
---
apiVersion: suan.ai/v1
kind: Job
metadata: {name: quick-eval}
spec:
  replicaGroups:
    - {name: eval, replicas: 1, accelerators: {count: 8, type: H100}}
  runtimeEstimate: 30m
---
apiVersion: suan.ai/v1
kind: Job
metadata: {name: long-sweep}
spec:
  replicaGroups:
    - {name: sweep, replicas: 1, accelerators: {count: 8, type: H100}}
  runtimeEstimate: 24h
"""


def _apply(running: dict[str, Allocation], decisions: Decisions, now: float) -> None:
    for victim in decisions.preemptions:
        running.pop(victim.job, None)
    for start in decisions.starts:
        running[start.job.name] = Allocation(start.job, start.replicas, now)


def demo_command() -> None:
    """Show the scheduler placing gangs, explaining waits, preempting and backfilling."""
    from suan.cluster.spec import load_cluster

    console = Console()
    cluster = load_cluster(EXAMPLES / "clusters" / "mixed-h100-910b.yaml")
    first_jobs, queues = load_documents(EXAMPLES / "jobs" / "mixed.yaml")
    second_jobs, _ = load_documents_text(SECOND_WAVE, "second wave", submit_time=3600.0)
    second_jobs = [replace(job, submit_time=3600.0 + index) for index, job in
                   enumerate(second_jobs)]
    capacity = ", ".join(f"{n} {t}" for t, n in sorted(cluster.capacity().items()))
    console.print(f"[bold]Suan demo[/]: {len(cluster)} nodes ({capacity}), policy [bold]default[/]")
    running: dict[str, Allocation] = {}
    pending = {job.name: job for job in first_jobs}
    steps = [(0.0, "t=0: first wave", []), (3600.0, "t=1h: second wave", second_jobs),
             (10_800.0, "t=3h: two jobs finished", [])]
    state = CarriedState()
    for now, title, arrivals in steps:
        if title.startswith("t=3h"):
            for name in ("ranker-retrain", "quick-eval"):
                running.pop(name, None)
        pending.update({job.name: job for job in arrivals})
        console.print(Rule(title))
        snapshot = Snapshot(cluster, tuple(running.values()), tuple(queues), now)
        decisions, state = schedule(snapshot, list(pending.values()), "default", state)
        render_decisions(decisions, console)
        _apply(running, decisions, now)
        for victim in decisions.preemptions:
            pending[victim.job] = snapshot.running_by_name[victim.job].job
        for start in decisions.starts:
            pending.pop(start.job.name, None)
    console.print(Rule())
    console.print("Try it on your own files: [bold]suan schedule --cluster FILE --jobs FILE "
                  "[--policy NAME] [--json][/]; list policies with [bold]suan policies[/].")


def register(app: typer.Typer) -> None:
    """Add `demo` to `app`."""
    app.command("demo")(demo_command)
