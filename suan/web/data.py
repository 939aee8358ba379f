"""What the dashboard pages show, computed from the store and the inventory with the API's
own views (suan.control.views) and the API's tenancy rules (suan.control.auth): a caller sees
on a page exactly what the REST API would answer them."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suan.cluster.model import Cluster, Node
from suan.control.auth import Identity, can_view, views_all_jobs
from suan.control.jobs import load_queues, placement_of
from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.control.nodes_api import node_health_views, sync_operator_verdicts
from suan.control.views import node_view, queue_view
from suan.devices.watch import HEALTH_LABEL
from suan.jobs.queue import ANY_ACCELERATOR, QueueSpec
from suan.sched.decisions import WaitCode

HIDDEN_JOB = "hidden"
JOBS_SHOWN = 200
"""Rows of the job list: a screenful of filtered jobs, newest first (filters narrow it)."""
HOLDING = tuple(s.value for s in JobState if s.holds_devices)
LIVE = tuple(s.value for s in JobState if not s.final)


@dataclass(frozen=True)
class JobFilter:
    """The job list's filters; an empty field does not filter."""

    user: str = ""
    queue: str = ""
    state: str = ""
    reason: str = ""


def reason_words(code: str | None) -> str:
    """What a pending reason code means, in words ("" for no or an unknown code)."""
    try:
        return WaitCode(code).doc if code else ""
    except ValueError:
        return ""


def visible_queue_names(session: Session, caller: Identity) -> list[str]:
    """Queues all of whose jobs the caller sees (the API's `visible_queues`)."""
    return [q.name for q in load_queues(session) if views_all_jobs(caller, q)]


def _visible(query, session: Session, caller: Identity):  # type: ignore[no-untyped-def]
    if caller.admin:
        return query
    seen = visible_queue_names(session, caller)
    return query.where((JobRow.user == caller.user) | JobRow.queue.in_(seen))


def job_list(session: Session, caller: Identity, wanted: JobFilter) -> dict[str, Any]:
    """The newest JOBS_SHOWN jobs the caller may see that pass `wanted`, and how many pass."""
    query = _visible(select(JobRow), session, caller)
    for column, value in ((JobRow.user, wanted.user), (JobRow.queue, wanted.queue),
                          (JobRow.state, wanted.state), (JobRow.reason_code, wanted.reason)):
        if value:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.order_by(JobRow.submit_time.desc(), JobRow.id.desc()).limit(JOBS_SHOWN)
    )
    return {"rows": list(rows), "total": total or 0}


def _device_states(view: dict[str, Any], node: Node) -> list[dict[str, str]]:
    """Each device of a node view: its state (allocated, free, unhealthy, degraded,
    cordoned, down, or unknown where the device-health reading failed: the node's
    `device-health` label) and the job holding it."""
    unknown = node.labels.get(HEALTH_LABEL) == "unknown"
    operator = view.get("operator")
    node_state = (
        "cordoned" if operator else
        "unknown" if unknown else
        {"ready": "free", "degraded": "degraded", "cordoned": "cordoned", "down": "down"}.get(
            view["health"], view["health"])
    )
    devices = []
    for device in range(node.devices):
        job = view["used"].get(str(device), "")
        state = ("allocated" if job else
                 "unhealthy" if device in node.unhealthy_devices else node_state)
        devices.append({"id": str(device), "state": state, "job": job})
    return devices


def _domain_of(node: Node) -> dict[int, int]:
    return {device: index for index, domain in enumerate(node.domains) for device in domain}


def cluster_page(session: Session, caller: Identity, inventory: Any, engine: str,
                 simulated: bool, block: str = "") -> dict[str, Any]:
    """Every block and rack with its nodes and devices per state; the nodes of one block
    (`block`, else the first) in detail, each with its devices grouped by link domain."""
    holding = list(session.scalars(select(JobRow).where(JobRow.state.in_(HOLDING))))
    sync_operator_verdicts(session, inventory)
    cluster: Cluster = inventory.current()
    shown = None
    if not caller.admin:
        queues = {q.name: q for q in load_queues(session)}
        shown = {r.id for r in holding if can_view(caller, r, queues.get(r.queue))}
    on_node: dict[str, list[JobRow]] = defaultdict(list)
    for row in holding:
        for name in {replica.node for replica in placement_of(row)}:
            on_node[name].append(row)
    views = [node_view(node, simulated, on_node.get(node.name, []), shown, HIDDEN_JOB)
             for node in cluster]
    views = node_health_views(session, inventory, views, holding)
    blocks = sorted({node.block or "-" for node in cluster})
    chosen = block if block in blocks else (blocks[0] if blocks else "")
    racks: dict[tuple[str, str], dict[str, Any]] = {}
    detail: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counts: Counter[str] = Counter()
    for node, view in zip(cluster, views, strict=True):
        devices = _device_states(view, node)
        key = (node.block or "-", node.rack or "-")
        rack = racks.setdefault(key, {"block": key[0], "rack": key[1], "nodes": 0,
                                      "counts": Counter()})
        rack["nodes"] += 1
        rack["counts"].update(d["state"] for d in devices)
        counts.update(d["state"] for d in devices)
        if key[0] == chosen:
            detail[key[1]].append({**view, "domain_devices": _by_domain(node, devices)})
    return {
        "engine": engine,
        "error": inventory.error,
        "racks": [racks[key] for key in sorted(racks)],
        "blocks": blocks,
        "block": chosen,
        "groups": [{"rack": rack, "nodes": nodes} for rack, nodes in sorted(detail.items())],
        "counts": dict(sorted(counts.items())),
        "states": sorted(counts),
        "nodes": len(views),
    }


def _by_domain(node: Node, devices: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    where = _domain_of(node)
    domains: dict[int, list[dict[str, str]]] = defaultdict(list)
    for device in devices:
        domains[where.get(int(device["id"]), -1)].append(device)
    return [domains[k] for k in sorted(domains)]


def _use_by_type(rows: list[JobRow], cluster: Cluster) -> dict[str, dict[str, float]]:
    """Devices held per queue and accelerator type (the node's type for each device)."""
    use: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        for replica in placement_of(row):
            node = cluster.node(replica.node) if replica.node in cluster.index else None
            kind = (node.accelerator if node else None) or "unknown"
            use[row.queue][kind] += len(replica.devices) * replica.milli / 1000
    return use


def _standing(queues: tuple[QueueSpec, ...], use: dict[str, dict[str, float]],
              capacity: dict[str, int]) -> dict[str, float]:
    """Each queue's dominant share (DRF): its largest fraction of any type's capacity, over
    its weight; the scheduler serves the queue with the least first."""
    shares = {}
    for queue in queues:
        fractions = [amount / capacity[kind] for kind, amount in use.get(queue.name, {}).items()
                     if capacity.get(kind)]
        shares[queue.name] = max(fractions, default=0.0) / max(queue.weight, 1e-9)
    return shares


def queues_page(session: Session, cluster: Cluster) -> dict[str, Any]:
    """Every queue: guarantee, borrow limit, use and borrowed amount per type, fair-share
    standing, running and waiting jobs, and waiting jobs per reason code. Only the jobs that
    hold devices are loaded whole; the waiting ones are counted by the database."""
    holding = list(session.scalars(select(JobRow).where(JobRow.state.in_(HOLDING))))
    queues = load_queues(session)
    use = _use_by_type(holding, cluster)
    capacity = dict(cluster.capacity())
    shares = _standing(queues, use, capacity)
    order = sorted(shares, key=lambda name: (shares[name], name))
    waiting: dict[str, Counter[str]] = defaultdict(Counter)
    counted = session.execute(
        select(JobRow.queue, JobRow.state, JobRow.reason_code, func.count())
        .where(JobRow.state.in_(LIVE))
        .group_by(JobRow.queue, JobRow.state, JobRow.reason_code)
    )
    for queue_name, state, code, count in counted:
        if JobState(state).waiting:
            waiting[queue_name][code or "none"] += count
    listed = []
    for queue in queues:
        view = {**queue_view(queue, holding), "waiting": sum(waiting[queue.name].values())}
        used = dict(use.get(queue.name, {}))
        if used:
            used[ANY_ACCELERATOR] = sum(used.values())
        types = sorted(set(used) | set(queue.guaranteed) | set(queue.borrow_limit or {}))
        listed.append({
            **view,
            "per_type": [{
                "type": kind,
                "used": used.get(kind, 0.0),
                "guaranteed": queue.guaranteed.get(kind),
                "borrow_limit": (queue.borrow_limit or {}).get(kind),
                "borrowed": None if kind not in queue.guaranteed else
                max(0.0, used.get(kind, 0.0) - queue.guaranteed[kind]),
            } for kind in types],
            "share": shares[queue.name],
            "standing": order.index(queue.name) + 1,
            "waiting_by_reason": dict(sorted(waiting[queue.name].items())),
        })
    return {"queues": listed, "capacity": capacity, "reasons": list(WaitCode)}
