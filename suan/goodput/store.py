"""Goodput from the control plane's store: a job's timeline (events, progress records, size),
its breakdown and three goodput factors, and the device-time weighted total of many jobs.

The owner's own waits are the intervals from a `held` event to the next `released` (or to the
next `scheduled`, or to now), and a job's wait for its dependencies (from its submission to
its `dependencies-met` event, or to its end or now while they are not met); the job's spec has
no `notBefore` yet.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.cluster.model import Cluster
from suan.control.jobs import scheduler_job
from suan.control.models import EventRow, JobRow, ProgressRow, RankRow
from suan.errors import SuanError
from suan.goodput.breakdown import Breakdown, breakdown
from suan.goodput.program import gang_tokens_per_s, mfu
from suan.goodput.timeline import Mark, Record, Timeline

HOLD, RELEASE = "held", "released"


def job_timeline(session: Session, row: JobRow) -> Timeline:
    """The timeline of the job in `row`."""
    marks = tuple(
        Mark(time, kind, message)
        for time, kind, message in session.execute(
            select(EventRow.time, EventRow.kind, EventRow.message)
            .where(EventRow.job_id == row.id)
            .order_by(EventRow.id)
        )
    )
    columns = (ProgressRow.attempt, ProgressRow.rank, ProgressRow.step, ProgressRow.seen_at,
               ProgressRow.tokens, ProgressRow.step_time_s, ProgressRow.checkpoint_s)
    records = tuple(
        Record(*values)
        for values in session.execute(select(*columns).where(ProgressRow.job_id == row.id))
    )
    return Timeline(
        row.submit_time,
        row.end_time,
        scheduler_job(row).devices,
        marks,
        records,
        _holds(marks, row.end_time) + _dependency_wait(row, marks),
    )


def _dependency_wait(row: JobRow, marks: tuple[Mark, ...]) -> tuple[tuple[float, float], ...]:
    """The job's wait for its dependencies (see module doc); none for a job without any."""
    met = next((mark.time for mark in marks if mark.kind == "dependencies-met"), None)
    if met is not None:
        return ((row.submit_time, met),)
    if row.waits_for:
        return ((row.submit_time, row.end_time if row.end_time is not None else float("inf")),)
    return ()


def _holds(marks: tuple[Mark, ...], end: float | None) -> tuple[tuple[float, float], ...]:
    held_at: float | None = None
    out = []
    for mark in marks:
        if mark.kind == HOLD and held_at is None:
            held_at = mark.time
        elif mark.kind in (RELEASE, "scheduled") and held_at is not None:
            out.append((held_at, mark.time))
            held_at = None
    if held_at is not None:
        out.append((held_at, end if end is not None else float("inf")))
    return tuple(out)


def job_goodput(
    session: Session, row: JobRow, now: float, cluster: Cluster | None = None
) -> dict[str, Any]:
    """The breakdown of the job in `row` at `now`, its scheduling, runtime and program goodput
    (MFU: needs the job's `model`, its reported tokens and step times, and its devices' type,
    looked up in `cluster`), and a note for anything unknown."""
    timeline = job_timeline(session, row)
    parts = breakdown(timeline, now)
    program, program_note = _program(session, row, timeline, cluster)
    return _figures(row, parts, timeline.devices, program, program_note)


def _figures(
    row: JobRow, parts: Breakdown, devices: int, program: float | None, program_note: str
) -> dict[str, Any]:
    scheduling, runtime = parts.scheduling_goodput(), parts.runtime_goodput()
    notes = []
    if not parts.reports_progress:
        notes.append("the job reports no progress: its running time is productive-unknown")
    if program is None:
        notes.append(program_note)
    total = None
    if None not in (scheduling, runtime, program):
        total = scheduling * runtime * program  # type: ignore[operator]
    return {
        "id": row.id,
        "queue": row.queue,
        "state": row.state,
        "devices": devices,
        "wall_s": parts.wall,
        "breakdown": parts.as_dict(),
        "reports_progress": parts.reports_progress,
        "scheduling_goodput": scheduling,
        "runtime_goodput": runtime,
        "program_goodput": program,
        "goodput": total,
        "notes": notes,
    }


def _program(
    session: Session, row: JobRow, timeline: Timeline, cluster: Cluster | None
) -> tuple[float | None, str]:
    """(MFU, why it is unknown)."""
    job = scheduler_job(row)
    if job.model is None:
        return None, "program goodput unknown: the job names no model"
    rate = gang_tokens_per_s(timeline.records)
    if rate is None:
        return None, "program goodput unknown: no token counts with step times reported"
    peak = _peak_tflops(session, row, cluster)
    if peak is None:
        return None, "program goodput unknown: the devices' type or its peak is not known"
    from suan.plan.use import flops_per_token, job_workload

    try:
        seq, _ = job_workload(dict(job.env))
        flops = flops_per_token(job.model, seq)
    except (SuanError, ValueError, OSError) as exc:
        return None, f"program goodput unknown: model {job.model!r}: {exc}"
    return mfu(rate, flops, timeline.devices, peak), ""


def _peak_tflops(session: Session, row: JobRow, cluster: Cluster | None) -> float | None:
    """The dense bf16 peak of the devices of the job's last launch."""
    if cluster is None:
        return None
    node_name = session.scalar(
        select(RankRow.node).where(RankRow.job_id == row.id).order_by(RankRow.attempt.desc())
    )
    if node_name is None or node_name not in cluster.index:
        return None
    accelerator = cluster.node(node_name).accelerator
    if accelerator is None:
        return None
    from suan.catalog import default_catalog

    found = default_catalog().find(accelerator)
    return found.bf16_tflops if found and found.bf16_tflops else None


def total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The device-time weighted total of `job_goodput` answers: each bucket in device-seconds,
    the goodput factors from the summed buckets, program goodput weighted by each job's
    available device-time."""
    summed = dict.fromkeys(Breakdown.buckets(), 0.0)
    reporting = Breakdown(reports_progress=True)
    for figures in rows:
        for name, seconds in figures["breakdown"].items():
            summed[name] += seconds * figures["devices"]
            if figures["reports_progress"]:
                setattr(reporting, name, getattr(reporting, name) + seconds * figures["devices"])
    parts = Breakdown(**summed, reports_progress=reporting.wall > 0)
    weighted = [
        (f["program_goodput"], f["devices"] * (f["wall_s"] - f["breakdown"]["user_wait"]
                                              - f["breakdown"]["queue_wait"]))
        for f in rows
        if f["program_goodput"] is not None
    ]
    weight = sum(w for _, w in weighted)
    return {
        "jobs": len(rows),
        "device_s": parts.wall,
        "breakdown_device_s": parts.as_dict(),
        "scheduling_goodput": parts.scheduling_goodput(),
        "runtime_goodput": reporting.runtime_goodput(),
        "program_goodput": sum(m * w for m, w in weighted) / weight if weight > 0 else None,
        "program_goodput_jobs": len(weighted),
    }
