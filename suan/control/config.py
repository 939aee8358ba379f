"""The settings of one control-plane server, fixed at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from suan.control.identity import IdentityPolicy


@dataclass(frozen=True)
class ControlConfig:
    """Where state lives, whether devices are simulated, and the reconciler's timings (s).

    The nodes come from the executor's inventory, asked at most every `inventory_s`.
    `restart_backoff_s` is the wait before the first gang restart (doubling after each);
    `stop_grace_s` the time between SIGTERM and SIGKILL when a job is stopped;
    `launch_refusals` how many times in a row an engine may refuse a job's launch before the
    job fails with the engine's message; `identity` which OS account each job's ranks run as;
    `checkpoint_roots` the operator's directories under which each user may name checkpoint
    directories (`<root>/<user>/...`, beside `<home>/users/<user>/`).
    """

    home: Path
    simulated: bool = True
    policy: str = "default"
    tick_s: float = 0.25
    restart_backoff_s: float = 2.0
    stop_grace_s: float = 10.0
    inventory_s: float = 5.0
    launch_refusals: int = 3
    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    checkpoint_roots: tuple[str, ...] = ()
