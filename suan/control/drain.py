"""Health drives the reconciler: the operator's cordons and drains (and a device verdict of
severity `drain`) become node health, and a drain whose grace has ended stops every gang with
a replica on the node.

    drains = Drains(inventory)
    changed = drains.tick(session, live_rows, now)     # once per reconciler tick

A drained gang is stopped like a preempted one: it goes back to `pending` (no failure restart
counted against maxRestarts, no backoff) and starts again, from its last checkpoint, wherever
the scheduler places it; a gang that ends within the grace period is left alone. Each affected
job gets a `drain` event naming the node and the reason, and its stop and pending reasons name
them too. The stop itself is the reconciler's: a job with a `stop_target` is stopped (SIGTERM,
SIGKILL after the server's stop grace) and settled there.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from suan.control.inventory import ClusterInventory
from suan.control.lifecycle import JobState
from suan.control.models import JobRow
from suan.control.overrides import (
    SOURCE,
    Action,
    Override,
    jobs_on,
    load_overrides,
    operator_verdicts,
    set_override,
)
from suan.control.store import add_event
from suan.devices.model import Severity

DEVICE_DRAIN_GRACE_S = 600.0
"""The grace a device verdict of severity `drain` gives the node's gangs: the same ten minutes
as an operator's drain without `--grace`, so that both drains treat a job alike."""


class Drains:
    """Keeps the inventory's operator verdicts in step with the store and carries out drains
    whose grace has ended (see the module doc)."""

    def __init__(self, inventory: ClusterInventory, device_grace_s: float = DEVICE_DRAIN_GRACE_S):
        self.inventory = inventory
        self.device_grace_s = device_grace_s

    def tick(self, session: Session, rows: Iterable[JobRow], now: float) -> bool:
        """Read the overrides, record a drain for each device verdict that asks for one, and
        mark for stopping the gangs on nodes whose drain is due; whether the nodes' health
        changed."""
        overrides = load_overrides(session)
        overrides.update(self._device_drains(session, overrides, now))
        changed = self.inventory.set_verdicts(SOURCE, operator_verdicts(overrides))
        holding = [row for row in rows if JobState(row.state).holds_devices]
        for override in overrides.values():
            if override.action == Action.DRAIN and (override.drain_at or 0.0) <= now:
                for row in jobs_on(holding, override.node):
                    stop_for_drain(session, row, override)
        return changed

    def _device_drains(
        self, session: Session, overrides: dict[str, Override], now: float
    ) -> dict[str, Override]:
        """A drain override for each node a device source judges `drain` and the operator has
        not already cordoned or drained (it stays until an operator uncordons the node)."""
        made: dict[str, Override] = {}
        besides = self.inventory.verdicts_besides(SOURCE)
        known = self.inventory.current().index if besides else {}
        for node, verdicts in besides.items():
            if node in overrides or node not in known:
                continue
            asking = next((v for v in verdicts if v.severity == Severity.DRAIN), None)
            if asking is not None:
                made[node] = set_override(session, node, Action.DRAIN, asking.reason,
                                          asking.source[:63], now, self.device_grace_s)
        return made


def stop_for_drain(session: Session, row: JobRow, override: Override) -> None:
    """Ask the reconciler to stop `row` and requeue it, saying why (once per stop)."""
    if row.stop_target is not None:
        return
    row.stop_target = JobState.PENDING.value
    row.stop_reason = f"node {override.node} {override.words}"
    add_event(
        session,
        row.id,
        "drain",
        f"node {override.node} {override.words}; stopping the gang, "
        "to be requeued and restarted from its last checkpoint",
    )
