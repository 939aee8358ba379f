"""The gauges `/metrics` computes at scrape time: a prometheus-client Collector over the store
(a few GROUP BY queries and the placements of the jobs that hold devices) and the inventory.

    registry.register(StoreCollector(store, inventory))

Families (docs/metrics.md): jobs by queue and state; waiting jobs by queue and wait code, and
how long the oldest of each has waited since submission; each queue's devices in use,
guarantee and borrow limit per accelerator type; devices by type and state; nodes by type
and health. Labels hold only states, wait codes (suan.sched.decisions.WaitCode), queue names
and accelerator types: never a job id, a user or a reason's words.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suan.cluster.model import Cluster, NodeHealth
from suan.control.inventory import ClusterInventory
from suan.control.jobs import load_queues
from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.control.store import Store
from suan.jobs.queue import ANY_ACCELERATOR
from suan.sched.decisions import WaitCode

HOLDING = tuple(s.value for s in JobState if s.holds_devices)
WAITING = tuple(s.value for s in JobState if s.waiting)
WAIT_CODES = frozenset(code.value for code in WaitCode)
NO_CODE = "none"
"""The `reason` label of a waiting job the scheduler has not judged yet (no wait code)."""
OTHER_CODE = "other"
"""The `reason` label of a stored code outside the closed list (from a newer server)."""
NO_ACCELERATOR = "none"
"""The `accelerator` label of devices of no catalog type."""
DEVICE_STATES = ("free", "allocated", "unhealthy", "cordoned", "down")
IDLE_STATE = {NodeHealth.CORDONED: "cordoned", NodeHealth.DOWN: "down"}
"""The state of a device no job holds on a node of this health (else `free`)."""


@dataclass(frozen=True)
class Held:
    """What a job that holds devices holds: devices per node, and their type and amount."""

    accelerator: str
    devices: float
    by_node: tuple[tuple[str, tuple[int, ...]], ...]


def read_placement(text: str) -> Held:
    """A stored placement (suan.control.jobs.placement_json) as what it holds; a replica
    sharing a device (`milli` < 1000) counts its share of it."""
    document = json.loads(text)
    replicas = document.get("replicas", [])
    return Held(
        document.get("accelerator") or NO_ACCELERATOR,
        sum(len(r["devices"]) * r.get("milli", 1000) / 1000 for r in replicas),
        tuple((r["node"], tuple(r["devices"])) for r in replicas),
    )


def wait_label(code: str) -> str:
    """The `reason` label of a stored wait code: the code, `none` or `other`."""
    if not code:
        return NO_CODE
    return code if code in WAIT_CODES else OTHER_CODE


class StoreCollector(Collector):
    """Gauges read from `store` and `inventory` at each scrape (see the module doc). Parsed
    placements are kept by job id between scrapes (while the job holds the same ones)."""

    def __init__(self, store: Store, inventory: ClusterInventory):
        self.store = store
        self.inventory = inventory
        self._held: dict[str, tuple[str, Held]] = {}

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time only

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        with self.store.plain_session() as session:
            yield from _job_families(session, now)
            held = self._holding(session)
            yield from _queue_families(session, held)
        cluster = self.inventory.current()
        yield from _device_families(cluster, held)

    def _holding(self, session: Session) -> list[tuple[str, Held]]:
        """(queue, what it holds) for each job holding devices."""
        rows = session.execute(
            select(JobRow.id, JobRow.queue, JobRow.placement).where(JobRow.state.in_(HOLDING))
        )
        kept: dict[str, tuple[str, Held]] = {}
        found: list[tuple[str, Held]] = []
        for job_id, queue, text in rows:
            if not text:
                continue
            known = self._held.get(job_id)
            kept[job_id] = known if known and known[0] == text else (text, read_placement(text))
            found.append((queue, kept[job_id][1]))
        self._held = kept
        return found


def _job_families(session: Session, now: float) -> Iterator[Metric]:
    jobs = GaugeMetricFamily("suan_jobs", "Jobs by queue and lifecycle state.",
                             labels=["queue", "state"])
    query = select(JobRow.queue, JobRow.state, func.count()).group_by(JobRow.queue, JobRow.state)
    for queue, state, count in session.execute(query):
        jobs.add_metric([queue, state], count)
    yield jobs
    waiting = GaugeMetricFamily(
        "suan_jobs_waiting", "Waiting jobs (pending, preempted, restarting) by queue and wait "
        "code (the closed list of docs/schedule-json.md; `none`: not judged yet).",
        labels=["queue", "reason"])
    oldest = GaugeMetricFamily(
        "suan_jobs_waiting_oldest_seconds", "Seconds since the submission of the oldest "
        "waiting job, by queue and wait code.", labels=["queue", "reason"])
    query = (select(JobRow.queue, JobRow.reason_code, func.count(), func.min(JobRow.submit_time))
             .where(JobRow.state.in_(WAITING)).group_by(JobRow.queue, JobRow.reason_code))
    counts: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], float] = {}
    for queue, code, count, submitted in session.execute(query):
        key = (queue, wait_label(code))
        counts[key] += count
        first[key] = min(first.get(key, submitted), submitted)
    for key, count in sorted(counts.items()):
        waiting.add_metric(list(key), count)
        oldest.add_metric(list(key), max(0.0, now - first[key]))
    yield waiting
    yield oldest


def _queue_families(session: Session, held: list[tuple[str, Held]]) -> Iterator[Metric]:
    used: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for queue, holding in held:
        used[queue][holding.accelerator] += holding.devices
    in_use = GaugeMetricFamily(
        "suan_queue_devices_used", "Devices held by a queue's jobs, by accelerator type "
        f"(`{ANY_ACCELERATOR}`: of every type).", labels=["queue", "accelerator"])
    guaranteed = GaugeMetricFamily(
        "suan_queue_devices_guaranteed", "A queue's guarantee by accelerator type "
        f"(`{ANY_ACCELERATOR}`: devices of any type).", labels=["queue", "accelerator"])
    borrow = GaugeMetricFamily(
        "suan_queue_devices_borrow_limit", "How far above its guarantee a queue may borrow, by "
        "accelerator type (absent: no limit).", labels=["queue", "accelerator"])
    for queue in load_queues(session):
        mine = used.get(queue.name, {})
        for accelerator, amount in sorted(mine.items()):
            in_use.add_metric([queue.name, accelerator], amount)
        in_use.add_metric([queue.name, ANY_ACCELERATOR], sum(mine.values()))
        for accelerator, amount in sorted(queue.guaranteed.items()):
            guaranteed.add_metric([queue.name, accelerator], amount)
        for accelerator, amount in sorted((queue.borrow_limit or {}).items()):
            borrow.add_metric([queue.name, accelerator], amount)
    yield from (in_use, guaranteed, borrow)


def _device_families(cluster: Cluster, held: list[tuple[str, Held]]) -> Iterator[Metric]:
    allocated: dict[str, set[int]] = defaultdict(set)
    for _, holding in held:
        for node, devices in holding.by_node:
            allocated[node].update(devices)
    states: Counter[tuple[str, str]] = Counter()
    nodes: Counter[tuple[str, str]] = Counter()
    for node in cluster:
        kind = node.accelerator or NO_ACCELERATOR
        nodes[(kind, node.health.value)] += 1
        busy = {d for d in allocated.get(node.name, ()) if 0 <= d < node.devices}
        broken = len(node.unhealthy_devices - busy)
        rest = node.devices - len(busy) - broken
        states[(kind, "allocated")] += len(busy)
        states[(kind, "unhealthy")] += broken
        states[(kind, IDLE_STATE.get(node.health, "free"))] += rest
    devices = GaugeMetricFamily(
        "suan_devices", "Devices by accelerator type and state: allocated (held by a job), "
        "unhealthy, cordoned or down (on such a node, not held), free.",
        labels=["accelerator", "state"])
    for kind in sorted({kind for kind, _ in states}):
        for state in DEVICE_STATES:
            devices.add_metric([kind, state], states[(kind, state)])
    yield devices
    by_health = GaugeMetricFamily("suan_nodes", "Nodes by accelerator type and health.",
                                  labels=["accelerator", "health"])
    for (kind, health), count in sorted(nodes.items()):
        by_health.add_metric([kind, health], count)
    yield by_health
