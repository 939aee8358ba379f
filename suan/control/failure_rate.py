"""How often the cluster's nodes fail: a Bayesian estimate from the store's history.

A node failure is an event that names a node lost under a job: `rank-failed` with "node N is
down" (the reconciler) or `drain` ("node N drained by ...", a drain by an operator or a device
verdict stopping the job's gang); events of one node less than
`SAME_FAILURE_S` apart are one failure (one down node stops every job on it). The exposure is
node-days watched: the nodes the engine reports now, from the store's first event to now.

The rate is a Gamma-Poisson posterior mean,

    r = (a + failures) / (a / r0 + node-days),

with the prior mean `r0` = 5e-3 failures per node-day (the rate of Meta's RSC reliability
model, Kokolis et al., arXiv 2410.21680) and the prior's weight `a` = 4 failures: a Gamma
prior's coefficient of variation is 1/sqrt(a), and 1/sqrt(4) = 0.5 matches the spread of the
published clusters around r0 (2.34e-3 RSC-2, 3.8e-3 Llama 3, 6.5e-3 RSC-1). A cluster's own
history outweighs the prior after a / r0 = 800 node-days (a 100-node cluster in 8 days). Each
node gets the same form with the cluster's posterior as its prior mean, so a node with a
history of its own failures (a "lemon") rates higher than the rest, and one without history
rates as the cluster.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suan.checkpoint_interval import DAY_S
from suan.control.models import EventRow

PRIOR_RATE = 5e-3
"""Failures per node-day before any history (Meta RSC model, arXiv 2410.21680)."""
PRIOR_WEIGHT = 4.0
"""The prior counts as this many failures (coefficient of variation 0.5; module docstring)."""
SAME_FAILURE_S = 600.0
"""Events naming one node closer than this are one failure seen by several jobs."""
FAILURE_KINDS = ("rank-failed", "drain")
CACHE_S = 60.0
"""`store_rates` answers from memory for this long: it reads every failure event, rates move
on a scale of days, and launches and descriptions ask for them many times a minute."""
_DOWN = re.compile(r"\bnode (\S+?) is down\b")
_DRAINED = re.compile(r"\bnode (\S+?)[\s:;,)]")


@dataclass(frozen=True)
class FailureRates:
    """Failures per node-day: the cluster's and each node's (a node not listed rates as the
    cluster), with the history they came from."""

    cluster: float
    failures: int = 0
    node_days: float = 0.0
    per_node: dict[str, float] = field(default_factory=dict)

    def of(self, node: str) -> float:
        """The rate of `node`."""
        return self.per_node.get(node, self.cluster)

    def job_rate(self, nodes: Iterable[str]) -> float:
        """Failures per day of a job on `nodes` (any of them failing interrupts it)."""
        return sum(self.of(node) for node in nodes)


def posterior(failures: float, node_days: float, prior_rate: float) -> float:
    """The Gamma-Poisson posterior mean with weight `PRIOR_WEIGHT` around `prior_rate`."""
    return (PRIOR_WEIGHT + failures) / (PRIOR_WEIGHT / prior_rate + node_days)


def failed_node(kind: str, message: str) -> str | None:
    """The node an event says was lost, None when it names none."""
    pattern = _DOWN if kind == "rank-failed" else _DRAINED
    found = pattern.search(message + " ")
    return found.group(1) if found else None


def count_failures(events: Iterable[tuple[float, str, str]]) -> dict[str, int]:
    """Failures per node from (time, kind, message) events, merging those of one node closer
    than SAME_FAILURE_S."""
    times: dict[str, list[float]] = defaultdict(list)
    for when, kind, message in events:
        node = failed_node(kind, message)
        if node is not None:
            times[node].append(when)
    counts: dict[str, int] = {}
    for node, seen in times.items():
        seen.sort()
        counts[node] = 1 + sum(b - a >= SAME_FAILURE_S for a, b in pairwise(seen))
    return counts


def estimate(counts: dict[str, int], nodes: Iterable[str], days: float) -> FailureRates:
    """Rates from failure counts per node over `days` of watching `nodes`."""
    watched = set(nodes) | set(counts)
    node_days = max(0.0, days) * len(watched)
    total = sum(counts.values())
    cluster = posterior(total, node_days, PRIOR_RATE)
    per_node = {
        node: posterior(counts.get(node, 0), max(0.0, days), cluster) for node in sorted(watched)
    }
    return FailureRates(cluster, total, node_days, per_node)


_cache: dict[tuple[int, tuple[str, ...]], tuple[float, FailureRates]] = {}


def store_rates(session: Session, nodes: Iterable[str], now: float) -> FailureRates:
    """The rates the store's history gives for the cluster's `nodes` at `now` (the answer of
    the last CACHE_S seconds for the same store and nodes, if any)."""
    key = (id(session.get_bind()), tuple(sorted(nodes)))
    found = _cache.get(key)
    if found is not None and 0 <= now - found[0] < CACHE_S:
        return found[1]
    rates = _read_rates(session, key[1], now)
    _cache.clear()  # one store and one cluster per server: keep only the newest
    _cache[key] = (now, rates)
    return rates


def _read_rates(session: Session, nodes: Iterable[str], now: float) -> FailureRates:
    first = session.scalar(select(func.min(EventRow.time)))
    days = 0.0 if first is None else max(0.0, now - first) / DAY_S
    rows = session.execute(
        select(EventRow.time, EventRow.kind, EventRow.message).where(
            EventRow.kind.in_(FAILURE_KINDS)
        )
    )
    return estimate(count_failures(rows), nodes, days)
