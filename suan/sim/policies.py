"""Simulator-side policies: the scheduler's registered policies, plus preemptive LAS and SRTF
built from its plugins.

The scheduler preempts only by priority (and reclaim). Tiresias-style preemptive 2D-LAS and
oracle preemptive SRTF are therefore expressed as a *priority view* of each job, recomputed by
the simulator before every cycle, over the registered `priority` order with preemption on:

- `las-preemptive`: priority = -(discretised LAS level of the job's attained device-seconds),
  with the scheduler's own thresholds (`suan.sched.order.LAS_THRESHOLDS_S`); a running job is
  demoted when it crosses a threshold, and a job in a higher level preempts it.
- `srtf-preemptive`: priority = -(remaining seconds, oracle); a waiting job preempts running
  ones with more time left.

`resolve_policy(name)` accepts these names and every name in `suan.sched.POLICIES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from suan.sched import Policy, get_policy
from suan.sched.order import LAS_THRESHOLDS_S, ORDERS
from suan.sched.placement import PLACERS

PriorityView = Callable[[float, float, int], int]
"""(attained device-seconds, remaining seconds, devices) -> priority the scheduler sees."""


@dataclass(frozen=True)
class SimPolicy:
    """A scheduler policy and, optionally, the priority view the simulator gives jobs."""

    policy: Policy
    view: PriorityView | None = None
    thresholds: tuple[float, ...] = ()
    refresh_running: bool = False

    @property
    def name(self) -> str:
        return self.policy.name


def las_priority(attained: float, remaining: float, devices: int) -> int:
    return -sum(1 for limit in LAS_THRESHOLDS_S if attained >= limit)


def srtf_priority(attained: float, remaining: float, devices: int) -> int:
    return -math.ceil(remaining)


def _preemptive(name: str, description: str) -> Policy:
    return Policy(name, description, ORDERS["priority"], PLACERS["compact"](), preemption=True)


EXTRA: dict[str, SimPolicy] = {
    "las-preemptive": SimPolicy(
        _preemptive("las-preemptive", "Tiresias-style preemptive discretised 2D-LAS "
                    "(attained device-seconds), FIFO inside a level"),
        las_priority, LAS_THRESHOLDS_S),
    "srtf-preemptive": SimPolicy(
        _preemptive("srtf-preemptive", "oracle preemptive shortest remaining time first"),
        srtf_priority, refresh_running=True),
}


def resolve_policy(policy: str | Policy | SimPolicy) -> SimPolicy:
    """The simulator policy for a name (registered or extra), a Policy or a SimPolicy."""
    if isinstance(policy, SimPolicy):
        return policy
    if isinstance(policy, Policy):
        return SimPolicy(policy)
    if policy in EXTRA:
        return EXTRA[policy]
    return SimPolicy(get_policy(policy))


def policy_names() -> list[str]:
    from suan.sched import POLICIES

    return [*POLICIES.names(), *EXTRA]


def renamed(policy: SimPolicy, name: str) -> SimPolicy:
    return replace(policy, policy=replace(policy.policy, name=name))
