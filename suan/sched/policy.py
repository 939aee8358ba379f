"""Policies: named compositions of plugins at the scheduler's extension points, declared in one
registry that refuses duplicates.

Extension points, in the order a cycle meets them:
- order: which pending job is considered next (`suan.sched.order`), with optional fair-share
  interleaving of queues (DRF);
- admit: queue quotas with borrowing and lending (`suan.sched.quota`), on or off;
- filter + score: the placement strategy (`suan.sched.placement`), which only proposes nodes
  that pass the ledger's filters (type, health, free devices, CPU, memory, link domains);
- gang reserve: all replicas or none, through a ledger savepoint (`suan.sched.gang`);
- preempt: by priority, by reclaim of borrowed quota and, for a classed order, by service
  class inside a queue (`suan.sched.preempt`);
- backfill: EASY — the first blocked job gets a reservation that later jobs may not delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suan.errors import PolicyError
from suan.sched.order import ORDERS, OrderPlugin
from suan.sched.placement import PLACERS, Placer


@dataclass(frozen=True)
class Policy:
    """One named scheduling policy.

    `head_of_line_blocks`: without backfill, a blocked job stops every later job (strict
    order); with it off and no backfill, later jobs go around it (best effort).
    `assumed_runtime_s`: the runtime backfill assumes for a running job with no estimate.
    `migrate`: at the end of each cycle, move running jobs that carry per-type speeds to a
    faster accelerator type with room (`suan.sched.hetero`).
    `order_preemption`: time sharing inside a queue (LAS-style): a waiting job may preempt a
    running job of its own queue and priority whose service class is strictly worse, but
    only once that job's current run has lasted `class_preemption_min_run_s` seconds, so
    that every run pays back its restart (see docs/scheduler.md for how the default was
    chosen). Off, a job is only ever preempted by a higher priority or by reclaim.
    """

    name: str
    description: str
    order: OrderPlugin
    placer: Placer
    fair_share: bool = False
    quotas: bool = True
    preemption: bool = False
    backfill: bool = False
    head_of_line_blocks: bool = False
    assumed_runtime_s: float | None = 86_400.0
    order_preemption: bool = False
    class_preemption_min_run_s: float = 0.0
    max_preemption_attempts: int = 16
    migrate: bool = False
    extras: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "order": self.order.name,
            "placement": self.placer.name,
            "fair_share": self.fair_share,
            "quotas": self.quotas,
            "preemption": self.preemption,
            "order_preemption": self.order_preemption,
            "class_preemption_min_run_s": (self.class_preemption_min_run_s
                                           if self.order_preemption else None),
            "backfill": "easy" if self.backfill else None,
            "head_of_line_blocks": self.head_of_line_blocks,
            "migrate": self.migrate,
        }


class PolicyRegistry:
    """Policies by name. Registering a name twice is an error."""

    def __init__(self) -> None:
        self._policies: dict[str, Policy] = {}

    def register(self, policy: Policy) -> Policy:
        if policy.name in self._policies:
            raise PolicyError(f"policy {policy.name!r} is already registered")
        self._policies[policy.name] = policy
        return policy

    def get(self, name: str) -> Policy:
        try:
            return self._policies[name]
        except KeyError:
            known = ", ".join(sorted(self._policies))
            raise PolicyError(f"unknown policy {name!r}; known policies: {known}") from None

    def names(self) -> list[str]:
        return list(self._policies)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._policies.values())


CLASS_PREEMPTION_MIN_RUN_S = 300.0
"""The default policy's minimum run before a job may be preempted by its own queue (see
docs/scheduler.md, "Time sharing inside a queue", for the cross-validation that chose it)."""


def _placer(name: str) -> Placer:
    return PLACERS[name]()


def _build_registry() -> PolicyRegistry:
    registry = PolicyRegistry()
    fifo, priority = ORDERS["fifo"], ORDERS["priority"]
    register = registry.register
    register(Policy(
        "default",
        "priority classes; queues interleaved by dominant-resource fair share; inside a "
        "queue, service classes learned from finished jobs (Gittins index of attained "
        "service; LAS until a queue has history), then FIFO; quotas with borrowing and "
        "reclaim; topology-compact gang placement with fragmentation-aware sharing; "
        "preemption by priority, reclaim and service class (time sharing inside a queue, "
        f"once a job has run {CLASS_PREEMPTION_MIN_RUN_S:g} s); EASY backfill against runtime "
        "estimates; heterogeneity-aware: jobs with measured per-type speeds go to their "
        "fastest type and move or swap to faster types as they free up",
        ORDERS["gittins"], _placer("compact"), fair_share=True, preemption=True,
        backfill=True, assumed_runtime_s=None, order_preemption=True,
        class_preemption_min_run_s=CLASS_PREEMPTION_MIN_RUN_S, migrate=True,
    ))
    register(Policy("fifo", "strict FIFO, head of line blocks, compact placement", fifo,
                    _placer("compact"), head_of_line_blocks=True))
    register(Policy("fifo-besteffort", "FIFO; later jobs go around a blocked one", fifo,
                    _placer("compact")))
    register(Policy("priority", "priority then FIFO, with priority preemption", priority,
                    _placer("compact"), preemption=True))
    register(Policy("sjf", "oracle shortest job first (for comparisons)", ORDERS["sjf"],
                    _placer("compact")))
    register(Policy("srtf", "oracle shortest remaining time first (for comparisons)",
                    ORDERS["srtf"], _placer("compact")))
    register(Policy("las", "Tiresias-style discretised least attained service", ORDERS["las"],
                    _placer("compact")))
    register(Policy("fairshare", "DRF between queues, FIFO inside", fifo, _placer("compact"),
                    fair_share=True))
    register(Policy("backfill", "FIFO with EASY backfill", fifo, _placer("compact"),
                    backfill=True))
    for placer in ("random", "bestfit", "spread", "fgd"):
        register(Policy(f"fifo-{placer}", f"FIFO (best effort) with {placer} placement", fifo,
                        _placer(placer)))
    register(Policy("fifo-lookahead", "FIFO (best effort) with pack-lookahead placement: "
                    "fragmentation gradient descent that also counts what a placement takes "
                    "from later arrivals", fifo, _placer("pack-lookahead")))
    return registry


POLICIES = _build_registry()


def get_policy(name: str) -> Policy:
    """The registered policy `name`; PolicyError lists the known names."""
    return POLICIES.get(name)
