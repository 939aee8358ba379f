"""The cluster as the engine last reported it.

    inventory = ClusterInventory(executor, period_s=5.0)
    cluster = inventory.current()      # asks the engine at most every period_s

When the engine cannot be reached the last good picture is kept (empty before the first) and
`error` holds the engine's message, which waiting jobs show as their reason.

Other sources judge nodes too: `set_verdicts(source, {node: [Verdict, ...]})` replaces what
one source (the operator's cordons and drains, a device-health check) says, and `current()`
is the engine's picture merged with every source's verdicts (suan.control.node_health: the
worst wins, every reason is kept). `engine_cluster()` is the engine's picture alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence

from suan.cluster.model import Cluster, Node
from suan.control.node_health import Verdict, merge_cluster
from suan.devices.model import Severity
from suan.devices.watch import HEALTH_LABEL
from suan.exec import EngineError, Executor

log = logging.getLogger("suan.inventory")
DEVICE_SOURCE = "device health"
"""The source of the drain verdicts an engine's own device check asks for (a node labelled
`device-health: drain` by suan.devices.watch): the drain work carries them out."""


class ClusterInventory:
    """A cached `executor.inventory()`; thread-safe, so the API and the reconciler share it."""

    def __init__(self, executor: Executor, period_s: float = 5.0):
        self.executor = executor
        self.period_s = period_s
        self.error = ""
        self._cluster = Cluster([], name=executor.engine)
        self._taken: float | None = None
        self._lock = threading.Lock()
        self._verdicts: dict[str, dict[str, tuple[Verdict, ...]]] = {}
        self._merged: tuple[Cluster, Cluster] | None = None  # (engine's picture, merged)

    def current(self, now: float | None = None) -> Cluster:
        """The cluster, refreshed from the engine when the last reading is `period_s` old."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._taken is None or now - self._taken >= self.period_s:
                self._refresh(now)
            return self._merge()

    def refresh(self) -> Cluster:
        """Ask the engine now."""
        with self._lock:
            self._refresh(time.monotonic())
            return self._merge()

    def engine_cluster(self) -> Cluster:
        """The engine's last picture, without the other sources' verdicts."""
        with self._lock:
            return self._cluster

    def set_verdicts(self, source: str, verdicts: Mapping[str, Sequence[Verdict]]) -> bool:
        """Replace what `source` says, by node name; whether that changed anything."""
        fresh = {node: tuple(said) for node, said in verdicts.items() if said}
        with self._lock:
            if self._verdicts.get(source, {}) == fresh:
                return False
            self._verdicts[source] = fresh
            self._merged = None
            return True

    def verdicts(self, node: str) -> tuple[Verdict, ...]:
        """Every source's verdicts on `node` (the engine's own reading aside)."""
        with self._lock:
            return tuple(v for said in self._verdicts.values() for v in said.get(node, ()))

    def verdicts_besides(self, source: str) -> dict[str, tuple[Verdict, ...]]:
        """Every other source's verdicts, by node name (only nodes that have one)."""
        found: dict[str, tuple[Verdict, ...]] = {}
        with self._lock:
            for name, said in self._verdicts.items():
                if name != source:
                    for node, verdicts in said.items():
                        found[node] = found.get(node, ()) + verdicts
        return found

    def _merge(self) -> Cluster:
        """The engine's picture with every source's verdicts, kept until either changes."""
        if self._merged is not None and self._merged[0] is self._cluster:
            return self._merged[1]
        by_node: dict[str, list[Verdict]] = {}
        for said in self._verdicts.values():
            for node, verdicts in said.items():
                by_node.setdefault(node, []).extend(verdicts)
        merged = merge_cluster(self._cluster, by_node)
        self._merged = (self._cluster, merged)
        return merged

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
        self._verdicts[DEVICE_SOURCE] = device_drains(nodes)
        self._merged = None


def device_drains(nodes: Sequence[Node]) -> dict[str, tuple[Verdict, ...]]:
    """A `drain` verdict for each node whose device check asks for one, with its reason."""
    return {
        node.name: (Verdict(DEVICE_SOURCE, Severity.DRAIN, node.health_reason),)
        for node in nodes
        if node.labels.get(HEALTH_LABEL) == Severity.DRAIN.value
    }
