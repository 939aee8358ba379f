"""The settings of one control-plane server, fixed at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suan.cluster.model import Cluster, Node


@dataclass(frozen=True)
class ControlConfig:
    """Where state lives, which node this is, and the reconciler's timings (seconds).

    `restart_backoff_s` is the wait before the first gang restart (doubling after each);
    `stop_grace_s` the time between SIGTERM and SIGKILL when a job is stopped.
    """

    home: Path
    node: Node
    simulated: bool = True
    policy: str = "default"
    tick_s: float = 0.25
    restart_backoff_s: float = 2.0
    stop_grace_s: float = 10.0

    @property
    def cluster(self) -> Cluster:
        return Cluster([self.node], name="local")
