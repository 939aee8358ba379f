"""The JSON the API answers with: job summaries and details, nodes, queues."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suan.cluster.model import TOPOLOGY_TIERS, Node
from suan.control.batch_views import batch_summary
from suan.control.jobs import job_document, placement_of, rank_count, scheduler_job
from suan.control.lifecycle import JobState
from suan.control.models import EventRow, JobRow, RankRow
from suan.jobs.queue import ANY_ACCELERATOR, QueueSpec

TIERS = (*TOPOLOGY_TIERS, "supernode")


def job_summary(row: JobRow) -> dict[str, Any]:
    """One line of `suan jobs`."""
    job = scheduler_job(row)
    return {
        "id": row.id,
        "name": row.name,
        "user": row.user,
        "queue": row.queue,
        "state": row.state,
        "priority": job.priority,
        "ranks": rank_count(job, placement_of(row)),
        "devices": job.devices,
        "submit_time": row.submit_time,
        "start_time": row.start_time,
        "end_time": row.end_time,
        "attempt": row.attempt,
        "restarts": row.restarts,
        "reason": row.reason,
        "reason_code": row.reason_code,
        "exit_code": row.exit_code,
        "stopping": row.stop_target,
        "held_by": row.held_by or None,
        **batch_summary(row),
    }


def job_detail(session: Session, row: JobRow) -> dict[str, Any]:
    """`suan describe`: the summary plus spec, placement, ranks and events."""
    events = session.scalars(
        select(EventRow).where(EventRow.job_id == row.id).order_by(EventRow.id)
    )
    ranks = session.scalars(
        select(RankRow)
        .where(RankRow.job_id == row.id, RankRow.attempt == row.attempt)
        .order_by(RankRow.rank)
    )
    detail = job_summary(row)
    detail.update(
        {
            "spec": job_document(row),
            "placement": json.loads(row.placement) if row.placement else None,
            "checkpoint_dir": row.checkpoint_dir,
            "workdir": row.workdir,
            "cancel_requested": row.cancel_requested,
            "ranks_detail": [
                {
                    "rank": r.rank,
                    "node": r.node,
                    "devices": r.devices,
                    "pid": r.pid,
                    "engine_id": r.engine_id,
                    "exit_code": r.exit_code,
                    "log": r.log_path,
                }
                for r in ranks
            ],
            "events": [{"time": e.time, "kind": e.kind, "message": e.message} for e in events],
        }
    )
    return detail


def node_view(
    node: Node,
    simulated: bool,
    holding: list[JobRow],
    shown: set[str] | None = None,
    hidden: str = "hidden",
) -> dict[str, Any]:
    """`suan nodes`: the node, its devices in use and by which job. With `shown`, a device
    of a job not in it is marked `hidden` instead of named, and `hidden` counts them."""
    used: dict[int, str] = {}
    for row in holding:
        name = row.id if shown is None or row.id in shown else hidden
        for replica in placement_of(row):
            if replica.node == node.name:
                used.update({device: name for device in replica.devices})
    return {
        "name": node.name,
        "engine": node.labels.get("engine", ""),
        "accelerator": node.accelerator,
        "devices": node.devices,
        "simulated": simulated,
        "health": str(node.health),
        "health_reason": node.health_reason,
        "topology": {tier: node.tier(tier) for tier in TIERS if node.tier(tier)},
        "domains": node.domains,
        "cpu": node.cpu_milli / 1000,
        "memory_mib": node.memory_mib,
        "used": {str(device): job for device, job in sorted(used.items())},
        "free": node.devices - len(used),
        "hidden": 0 if shown is None else sum(job == hidden for job in used.values()),
    }


def queue_view(queue: QueueSpec, rows: list[JobRow]) -> dict[str, Any]:
    """`suan queues`: quota, devices in use, running and waiting jobs."""
    mine = [row for row in rows if row.queue == queue.name]
    holding = [r for r in mine if JobState(r.state).holds_devices]
    used = sum(scheduler_job(r).devices for r in holding)
    return {
        "name": queue.name,
        "parent": queue.parent,
        "weight": queue.weight,
        "admins": list(queue.admins),
        "submitters": list(queue.submitters) if queue.submitters is not None else None,
        "viewers": list(queue.viewers),
        "open": queue.open,
        "guaranteed": dict(queue.guaranteed),
        "borrow_limit": dict(queue.borrow_limit) if queue.borrow_limit is not None else None,
        "used": {ANY_ACCELERATOR: used},
        "running": len(holding),
        "waiting": sum(JobState(r.state).waiting for r in mine),
    }

