"""The operator's word on nodes: cordon (no new work) and drain (cordon, then the node's gangs
are stopped and requeued once the grace period ends), kept in the store (`node_overrides`) so
that they outlive a server restart and a change of leader.

    set_override(session, "n4", "drain", "ECC errors", "alice", now, grace_s=600)
    verdicts = operator_verdicts(load_overrides(session))   # for ClusterInventory.set_verdicts
    clear_override(session, "n4")                           # uncordon

The last word on a node wins: a cordon replaces a drain (the drain is called off) and a drain
replaces a cordon.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from suan.control.jobs import placement_of
from suan.control.models import JobRow, NodeOverrideRow
from suan.control.node_health import Verdict

SOURCE = "operator"
"""The verdict source of the operator's overrides (ClusterInventory.set_verdicts)."""


class Action(StrEnum):
    """What an operator asked of a node."""

    CORDON = "cordon"
    DRAIN = "drain"


@dataclass(frozen=True)
class Override:
    """One node's override: `drain_at` is when its gangs are stopped (drains only)."""

    node: str
    action: Action
    reason: str
    by: str
    at: float
    drain_at: float | None = None

    @property
    def words(self) -> str:
        """How jobs and the node listing show it: "cordoned by alice: fan noise"."""
        done = "cordoned" if self.action == Action.CORDON else "drained"
        return f"{done} by {self.by}" + (f": {self.reason}" if self.reason else "")

    def verdict(self) -> Verdict:
        return Verdict(SOURCE, self.action.value, self.words)


def _override(row: NodeOverrideRow) -> Override:
    return Override(row.node, Action(row.action), row.reason, row.by, row.at, row.drain_at)


def load_overrides(session: Session) -> dict[str, Override]:
    """Every node's override, by node name."""
    return {row.node: _override(row) for row in session.scalars(select(NodeOverrideRow))}


def set_override(
    session: Session,
    node: str,
    action: Action | str,
    reason: str,
    by: str,
    now: float,
    grace_s: float = 0.0,
) -> Override:
    """Record `by`'s `action` on `node` (replacing any earlier one); a drain stops the node's
    gangs `grace_s` from `now`."""
    action = Action(action)
    drain_at = now + grace_s if action == Action.DRAIN else None
    row = session.get(NodeOverrideRow, node)
    if row is None:
        row = NodeOverrideRow(node=node)
        session.add(row)
    row.action, row.reason, row.by, row.at, row.drain_at = action.value, reason, by, now, drain_at
    session.flush()
    return _override(row)


def clear_override(session: Session, node: str) -> Override | None:
    """Remove `node`'s override (uncordon); the one removed, None when it had none."""
    row = session.get(NodeOverrideRow, node)
    if row is None:
        return None
    removed = _override(row)
    session.execute(delete(NodeOverrideRow).where(NodeOverrideRow.node == node))
    return removed


def operator_verdicts(overrides: dict[str, Override]) -> dict[str, list[Verdict]]:
    """The overrides as verdicts by node name, for the inventory's merge."""
    return {node: [override.verdict()] for node, override in overrides.items()}


def jobs_on(rows: Iterable[JobRow], node: str) -> list[JobRow]:
    """The jobs of `rows` with a replica on `node`."""
    return [row for row in rows if any(r.node == node for r in placement_of(row))]


def override_state(override: Override, holding: Iterable[JobRow], now: float) -> str:
    """`cordoned`; `draining` while the grace runs or a gang on the node still stops;
    `drained` once none is left on it."""
    if override.action == Action.CORDON:
        return "cordoned"
    if override.drain_at is not None and override.drain_at > now:
        return "draining"
    return "draining" if jobs_on(holding, override.node) else "drained"


def override_view(
    override: Override | None, holding: Iterable[JobRow], now: float
) -> dict[str, Any] | None:
    """The operator's part of a node in `GET /v1/nodes` and the answers of the node routes."""
    if override is None:
        return None
    return {
        "action": override.action.value,
        "state": override_state(override, holding, now),
        "reason": override.reason,
        "by": override.by,
        "at": override.at,
        "drain_at": override.drain_at,
        "words": override.words,
    }
