"""Device health applied to a node: read the vendor's tool now and then, never in the way.

    watch = DeviceWatch(read=lambda: read_with_tool("nvidia", 5), period_s=60)
    node = watch.apply(node)        # the last verdict on `node`; starts a new reading when due

A reading runs on a background thread, at most one at a time and at most once per `period_s`,
so the inventory that calls `apply` on every refresh never waits for a tool (a hung tool is
killed by the runner after its timeout and gives "health unknown"). Before the first reading
ends, the node is shown as it is.

What a verdict does to the node (`apply_verdict`):
- unknown: health unchanged, reason "health unknown: <tool message>";
- warn: health unchanged, reason the findings;
- degrade: a ready node becomes DEGRADED (placed last);
- cordon, drain: the node becomes CORDONED (no new work) and the devices with a cordon- or
  drain-severity signal go into `unhealthy_devices`; the reason names them. Stopping the
  node's gangs on `drain` is the drain action's work; the severity is in the label
  `device-health` for it to read (`ok`, `warn`, `degrade`, `cordon`, `drain` or `unknown`).
A DOWN node stays DOWN; reasons already on the node are kept, the device reason after them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from suan.cluster.model import Node, NodeHealth
from suan.devices.model import Severity, ToolReport
from suan.devices.severity import NodeVerdict, SeverityTable, default_severity_table, judge

log = logging.getLogger("suan.devices")

HEALTH_LABEL = "device-health"
"""The node label that carries the verdict's severity (or `unknown`)."""


class DeviceWatch:
    """The latest device verdict of one node; see the module docstring."""

    def __init__(
        self,
        read: Callable[[], ToolReport],
        period_s: float = 60.0,
        table: SeverityTable | None = None,
        expected_devices: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.read = read
        self.period_s = period_s
        self.table = table or default_severity_table()
        self.expected_devices = expected_devices
        self.clock = clock
        self._verdict: NodeVerdict | None = None
        self._started: float | None = None
        self._running = False
        self._lock = threading.Lock()

    def verdict(self) -> NodeVerdict | None:
        """The last verdict (None before the first reading ends); starts a reading when due."""
        with self._lock:
            due = self._started is None or self.clock() - self._started >= self.period_s
            if due and not self._running:
                self._running = True
                self._started = self.clock()
                threading.Thread(target=self._read, name="suan-device-watch", daemon=True).start()
            return self._verdict

    def read_now(self) -> NodeVerdict:
        """Read and judge on this thread (for a one-off check); the result becomes the latest."""
        verdict = self._judged()
        with self._lock:
            self._verdict = verdict
        return verdict

    def apply(self, node: Node) -> Node:
        """`node` with the last verdict applied (unchanged before the first)."""
        verdict = self.verdict()
        return node if verdict is None else apply_verdict(node, verdict)

    def _judged(self) -> NodeVerdict:
        try:
            report = self.read()
        except Exception as exc:  # a reader's bug must not stop the watch; shown as unknown
            log.exception("device health reading failed")
            report = ToolReport("", "", unknown=f"reading failed: {exc}")
        return judge(report, self.table, self.expected_devices)

    def _read(self) -> None:
        verdict = self._judged()
        with self._lock:
            previous, self._verdict, self._running = self._verdict, verdict, False
        if previous is None or previous.reason != verdict.reason:
            log.info("device health: %s", verdict.reason or "ok")


def apply_verdict(node: Node, verdict: NodeVerdict) -> Node:
    """`node` as the verdict makes it; see the module docstring."""
    label = "unknown" if verdict.unknown else str(verdict.severity)
    labels = {**node.labels, HEALTH_LABEL: label}
    reason = verdict.reason
    if not reason:
        return replace(node, labels=labels)
    health = node.health
    if node.health is not NodeHealth.DOWN:
        if verdict.severity in (Severity.CORDON, Severity.DRAIN):
            health = NodeHealth.CORDONED
        elif verdict.severity is Severity.DEGRADE and node.health is NodeHealth.READY:
            health = NodeHealth.DEGRADED
    in_range = {d for d in verdict.unhealthy_devices if 0 <= d < node.devices}
    return replace(
        node,
        health=health,
        health_reason="; ".join(part for part in (node.health_reason, reason) if part),
        unhealthy_devices=node.unhealthy_devices | frozenset(in_range),
        labels=labels,
    )
