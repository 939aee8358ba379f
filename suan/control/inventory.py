"""The cluster as the engine last reported it.

    inventory = ClusterInventory(executor, period_s=5.0)
    cluster = inventory.current()      # asks the engine at most every period_s

When the engine cannot be reached the last good picture is kept (empty before the first) and
`error` holds the engine's message, which waiting jobs show as their reason.
"""

from __future__ import annotations

import logging
import threading
import time

from suan.cluster.model import Cluster, Node
from suan.exec import EngineError, Executor

log = logging.getLogger("suan.inventory")


class ClusterInventory:
    """A cached `executor.inventory()`; thread-safe, so the API and the reconciler share it."""

    def __init__(self, executor: Executor, period_s: float = 5.0):
        self.executor = executor
        self.period_s = period_s
        self.error = ""
        self._cluster = Cluster([], name=executor.engine)
        self._taken: float | None = None
        self._lock = threading.Lock()

    def current(self, now: float | None = None) -> Cluster:
        """The cluster, refreshed from the engine when the last reading is `period_s` old."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._taken is None or now - self._taken >= self.period_s:
                self._refresh(now)
            return self._cluster

    def refresh(self) -> Cluster:
        """Ask the engine now."""
        with self._lock:
            self._refresh(time.monotonic())
            return self._cluster

    def _refresh(self, now: float) -> None:
        self._taken = now
        try:
            nodes: tuple[Node, ...] = self.executor.inventory()
        except EngineError as exc:
            if str(exc) != self.error:
                log.warning("inventory: %s", exc)
            self.error = str(exc)
            return
        self.error = ""
        self._cluster = Cluster(nodes, name=self.executor.engine)
