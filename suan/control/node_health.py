"""One health per node from every source that has a word on it: the engine, the operator, the
devices.

    verdicts = [Verdict("operator", "cordon", "cordoned by alice: fan noise"),
                Verdict("nvidia", "degrade", "GPU 3: 12 retired pages pending")]
    node = merge_node(engine_node, verdicts)

The engine's own reading (`Node.health`, `Node.health_reason`) is one verdict among the others;
each other verdict is a `(source, severity, reason)` with a severity of
`suan.devices.model.Severity`. The worst wins: `down` (only an engine says that) over `cordon`
and `drain` (both: no new work; `cordoned`) over `degrade` (placed last; `degraded`) over `warn`
and `ok` (`ready`). Every reason above `ok` is kept, worst first, joined by "; ", so the
operator sees all of them (a reason that another one quotes whole is shown once, inside it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

from suan.cluster.model import Cluster, Node, NodeHealth
from suan.devices.model import Severity

HEALTH_ORDER = (NodeHealth.READY, NodeHealth.DEGRADED, NodeHealth.CORDONED, NodeHealth.DOWN)
"""Node health, mildest first."""

_HEALTH_OF = {
    Severity.OK: NodeHealth.READY,
    Severity.WARN: NodeHealth.READY,
    Severity.DEGRADE: NodeHealth.DEGRADED,
    Severity.CORDON: NodeHealth.CORDONED,
    Severity.DRAIN: NodeHealth.CORDONED,
}


class Verdict(NamedTuple):
    """What one source says of one node: `severity` is a `Severity` (or its string), `reason`
    its words (shown to the operator and to the jobs that wait on the node)."""

    source: str
    severity: Severity | str
    reason: str


def severity_of(value: Severity | str) -> Severity:
    """`value` as a Severity; ValueError naming the allowed values for anything else."""
    try:
        return Severity(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        raise ValueError(f"severity {value!r} is not one of {allowed}") from None


def node_health_of(severity: Severity | str) -> NodeHealth:
    """The node health a verdict of `severity` asks for (drain and cordon: cordoned)."""
    return _HEALTH_OF[severity_of(severity)]


def merge_health(
    engine: NodeHealth, engine_reason: str, verdicts: Sequence[Verdict]
) -> tuple[NodeHealth, str]:
    """The node's health and reason: the worst of the engine's and the verdicts', with the
    reasons of every reading above `ok` (worst first; a `warn` reason is kept although it does
    not change the health; one that another quotes whole is left to that one)."""
    readings = [(HEALTH_ORDER.index(engine), 0, engine_reason)] if engine_reason else []
    health = engine
    for verdict in verdicts:
        severity = severity_of(verdict.severity)
        if severity == Severity.OK:
            continue
        candidate = _HEALTH_OF[severity]
        if HEALTH_ORDER.index(candidate) > HEALTH_ORDER.index(health):
            health = candidate
        readings.append((HEALTH_ORDER.index(candidate), severity.rank, verdict.reason))
    readings.sort(key=lambda reading: (-reading[0], -reading[1]))
    reasons = list(dict.fromkeys(reason for _, _, reason in readings if reason))
    kept = [r for r in reasons if not any(r != other and r in other for other in reasons)]
    return health, "; ".join(kept)


def merge_node(node: Node, verdicts: Sequence[Verdict]) -> Node:
    """`node` with the health and reason of `merge_health` over its own and `verdicts`."""
    if not verdicts:
        return node
    health, reason = merge_health(node.health, node.health_reason, verdicts)
    if (health, reason) == (node.health, node.health_reason):
        return node
    return replace(node, health=health, health_reason=reason)


def merge_cluster(cluster: Cluster, verdicts: Mapping[str, Iterable[Verdict]]) -> Cluster:
    """`cluster` with each node merged with its verdicts (`verdicts` by node name; a name the
    cluster lacks is ignored). The same object when no node changes."""
    if not any(name in cluster.index for name in verdicts):
        return cluster
    nodes = [merge_node(node, tuple(verdicts.get(node.name, ()))) for node in cluster]
    if all(new is old for new, old in zip(nodes, cluster.nodes, strict=True)):
        return cluster
    return Cluster(nodes, name=cluster.name)
