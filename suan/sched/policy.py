"""Policies: named compositions of plugins at the scheduler's extension points, declared in one
registry that refuses duplicates.

The extension points and their interfaces are in `suan.sched.plugins`. A policy names:
- order: which pending job is considered next (`suan.sched.order`), with optional fair-share
  interleaving of queues (DRF);
- admit: queue quotas with borrowing and lending, or none (`suan.sched.admit`);
- filter + score: the placement strategy (`suan.sched.placement`), which only proposes nodes
  that pass the ledger's filters (type, health, free devices, CPU, memory, link domains);
- gang reserve: all replicas or none, through a ledger savepoint (`suan.sched.gang`);
- preempt: by priority, by reclaim of borrowed quota and, optionally, by service class inside
  a queue (`suan.sched.preemption`), or none;
- when blocked: EASY backfill, strict head of line, or go around (`suan.sched.blocking`);
- rank: an optional priority view from attained service or remaining time (`suan.sched.rank`);
- phases: the steps of a cycle, in order (`suan.sched.phases`: rank, queue, rebalance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from suan.errors import PolicyError
from suan.jobs.model import Job
from suan.sched.admit import QUOTAS, QuotaAdmission
from suan.sched.blocking import EASY_BACKFILL, GO_AROUND, HEAD_OF_LINE, EasyBackfill, HeadOfLine
from suan.sched.order import ORDERS, OrderPlugin, SortKey
from suan.sched.phases import QUEUE, RANK, REBALANCE
from suan.sched.placement import PLACERS, Placer
from suan.sched.plugins import Admit, Phase, Preempt, Rank, WhenBlocked
from suan.sched.preemption import VictimPreemption
from suan.sched.rank import LasRank, SrtfRank
from suan.sched.service import ServiceClasses


@dataclass(frozen=True)
class Policy:
    """One named scheduling policy: a plugin per extension point and the phases of a cycle.

    `fair_share`: among jobs of one priority, queues take turns by dominant-resource share.
    `preempt` None: a job never preempts. `blocked`: EASY backfill (with the runtime it
    assumes for a running job with no estimate), strict head of line, or go around.
    `rank`: a priority view (needs the `rank` phase first). With the `rebalance` phase, at the
    end of each cycle running jobs that carry per-type speeds move to a faster accelerator type
    with room (`suan.sched.hetero`). Time sharing inside a queue (`preempt.by_class`): a
    waiting job may preempt a running job of its own queue and priority whose service class is
    strictly worse, once that job's current run has lasted `preempt.class_min_run_s`, so that
    every run pays back its restart (see docs/scheduler.md for how the default was chosen).
    """

    name: str
    description: str
    order: OrderPlugin
    placer: Placer
    fair_share: bool = False
    admit: Admit = QUOTAS
    preempt: Preempt | None = None
    blocked: WhenBlocked = GO_AROUND
    rank: Rank | None = None
    phases: tuple[Phase, ...] = (QUEUE,)
    extras: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rank is not None and (not self.phases or self.phases[0] is not RANK):
            raise PolicyError(f"policy {self.name!r}: a rank needs the rank phase first")

    # Read-only views of the composition, for callers and the plugins that ask.
    @property
    def quotas(self) -> bool:
        """Whether placements are admitted against queue quotas."""
        return isinstance(self.admit, QuotaAdmission)

    @property
    def preemption(self) -> bool:
        return self.preempt is not None

    @property
    def order_preemption(self) -> bool:
        """Whether a job may preempt by service class inside its queue (time sharing)."""
        return self.preempt is not None and self.preempt.by_class

    @property
    def class_preemption_min_run_s(self) -> float:
        return self.preempt.class_min_run_s if self.preempt is not None else 0.0

    @property
    def backfill(self) -> bool:
        return isinstance(self.blocked, EasyBackfill)

    @property
    def head_of_line_blocks(self) -> bool:
        return isinstance(self.blocked, HeadOfLine)

    @property
    def migrate(self) -> bool:
        """Whether cycles end by moving jobs to faster types (the rebalance phase)."""
        return REBALANCE in self.phases

    def waiting_key(self, service: ServiceClasses | None) -> Callable[[Job], SortKey]:
        """The order in which a cycle of this policy considers waiting jobs (under learned
        service classes `service`), rank included: for callers that pass a cycle only the
        first jobs of their queue. A waiting job's key is fixed while it waits."""
        key = self.order.key_for(service)
        rank = self.rank
        if rank is None:
            return key
        return lambda job: key(job.with_priority(rank.waiting(job)))

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "phases": [phase.name for phase in self.phases],
            "order": self.order.name,
            "rank": self.rank.name if self.rank is not None else None,
            "placement": self.placer.name,
            "fair_share": self.fair_share,
            "admit": self.admit.name,
            "quotas": self.quotas,
            "preemption": self.preemption,
            "order_preemption": self.order_preemption,
            "class_preemption_min_run_s": (self.class_preemption_min_run_s
                                           if self.order_preemption else None),
            "backfill": "easy" if self.backfill else None,
            "when_blocked": self.blocked.name,
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
        ORDERS["gittins"], _placer("compact"), fair_share=True,
        preempt=VictimPreemption(by_class=True, class_min_run_s=CLASS_PREEMPTION_MIN_RUN_S),
        blocked=EasyBackfill(assumed_runtime_s=None), phases=(QUEUE, REBALANCE),
    ))
    register(Policy("fifo", "strict FIFO, head of line blocks, compact placement", fifo,
                    _placer("compact"), blocked=HEAD_OF_LINE))
    register(Policy("fifo-besteffort", "FIFO; later jobs go around a blocked one", fifo,
                    _placer("compact")))
    register(Policy("priority", "priority then FIFO, with priority preemption", priority,
                    _placer("compact"), preempt=VictimPreemption()))
    register(Policy("sjf", "oracle shortest job first (for comparisons)", ORDERS["sjf"],
                    _placer("compact")))
    register(Policy("srtf", "oracle shortest remaining time first (for comparisons)",
                    ORDERS["srtf"], _placer("compact")))
    register(Policy("las", "Tiresias-style discretised least attained service", ORDERS["las"],
                    _placer("compact")))
    register(Policy("fairshare", "DRF between queues, FIFO inside", fifo, _placer("compact"),
                    fair_share=True))
    register(Policy("backfill", "FIFO with EASY backfill", fifo, _placer("compact"),
                    blocked=EASY_BACKFILL))
    for placer in ("random", "bestfit", "spread", "fgd"):
        register(Policy(f"fifo-{placer}", f"FIFO (best effort) with {placer} placement", fifo,
                        _placer(placer)))
    register(Policy(
        "las-preemptive",
        "Tiresias-style preemptive discretised 2D-LAS: rank by attained device-seconds "
        "(levels at the LAS thresholds, counting a running job's current run), FIFO inside a "
        "level; a job of a better level preempts; user priorities are not consulted",
        priority, _placer("compact"), preempt=VictimPreemption(), rank=LasRank(),
        phases=(RANK, QUEUE)))
    register(Policy(
        "srtf-preemptive",
        "preemptive shortest remaining time first: rank by the job's duration (an oracle in "
        "the simulator), else its runtime estimate, less the time it has run; a job with "
        "less left preempts; user priorities are not consulted",
        priority, _placer("compact"), preempt=VictimPreemption(), rank=SrtfRank(),
        phases=(RANK, QUEUE)))
    register(Policy("fifo-lookahead", "FIFO (best effort) with pack-lookahead placement: "
                    "fragmentation gradient descent that also counts what a placement takes "
                    "from later arrivals", fifo, _placer("pack-lookahead")))
    return registry


POLICIES = _build_registry()


def get_policy(name: str) -> Policy:
    """The registered policy `name`; PolicyError lists the known names."""
    return POLICIES.get(name)
