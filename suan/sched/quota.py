"""Queue quotas: guaranteed amounts, borrowing up to a limit, lending, and fair shares.

Resources are canonical accelerator type names plus `accelerators` (devices of any type). A
request of `d` devices of type T counts against both T and `accelerators`. A queue that
guarantees typed amounts but no `accelerators` total guarantees their sum as its total.

Admission rule for a request in queue X, for every resource it uses:
1. along X and each ancestor Q: usage(Q) + request <= guaranteed(Q) + borrow_limit(Q);
2. wherever that takes a queue Q above its guarantee (it borrows), the borrowed part must come
   from its parent's spare room: the siblings' guarantees that they neither use nor lend stay
   theirs, and the parent itself may not exceed its own guarantee plus borrow limit (the
   cluster's capacity at the top).
A request within its queue's guarantee is always admissible; if the devices are in use by
queues that borrowed them, they come back by reclaim (preemption).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping

from suan.jobs.queue import ANY_ACCELERATOR, QueueSpec

INF = math.inf


def request_vector(accelerator: str, devices: float) -> dict[str, float]:
    """The quota resources a request of `devices` devices of `accelerator` uses."""
    return {accelerator: devices, ANY_ACCELERATOR: devices}


class QuotaBook:
    """Usage per queue (aggregated up the tree) against the queue specs and cluster capacity."""

    def __init__(self, queues: Iterable[QueueSpec], capacity: Mapping[str, float]):
        self.specs: dict[str, QueueSpec] = {q.name: q for q in queues}
        self.capacity = dict(capacity)
        self.capacity[ANY_ACCELERATOR] = sum(capacity.values())
        self.usage: dict[str, dict[str, float]] = {name: {} for name in self.specs}
        self._shares: dict[str, float] = {}
        self.version = 0
        self._paths: dict[str, list[str]] = {}
        self._ceilings: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str | None, str], float] = {}
        self._guaranteed: dict[str, dict[str, float]] = {}
        self._kept: dict[str, dict[str, float]] = {}
        for spec in self.specs.values():
            self._index(spec)
        self.children: dict[str | None, list[str]] = {}
        for spec in self.specs.values():
            self.children.setdefault(spec.parent, []).append(spec.name)
        self._journal: list[tuple[str, Mapping[str, float], float]] | None = None

    def begin(self) -> None:
        """Start recording usage changes, so that `rollback` can undo them (a caller that
        keeps one book between cycles runs each cycle between the two)."""
        self._journal = []

    def rollback(self) -> None:
        """Undo every usage change since `begin` and stop recording."""
        journal, self._journal = self._journal, None
        for queue, request, sign in reversed(journal or ()):
            self.add(queue, request, -sign)

    def copy(self) -> QuotaBook:
        """An independent copy: usage can be added to it without touching this book."""
        clone = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, dict):
                setattr(clone, name, value.copy())
        clone.usage = {queue: used.copy() for queue, used in self.usage.items()}
        return clone

    # ------------------------------------------------------------------ bookkeeping
    def ensure(self, queue: str) -> None:
        """Unknown queues behave as unlimited top-level queues."""
        if queue not in self.specs:
            self.specs[queue] = QueueSpec(name=queue)
            self.usage[queue] = {}
            self.children.setdefault(None, []).append(queue)
            self._index(self.specs[queue])

    def _index(self, spec: QueueSpec) -> None:
        guaranteed = {r: float(a) for r, a in spec.guaranteed.items()}
        if guaranteed and ANY_ACCELERATOR not in guaranteed:
            guaranteed[ANY_ACCELERATOR] = sum(guaranteed.values())
        self._guaranteed[spec.name] = guaranteed
        lend = spec.lend_limit or {}
        self._kept[spec.name] = {
            r: max(0.0, guaranteed.get(r, 0.0) - float(limit)) for r, limit in lend.items()
        }
        for resource, kept in self._kept[spec.name].items():
            key = (spec.parent, resource)
            self._held[key] = self._held.get(key, 0.0) + kept

    def path(self, queue: str) -> list[str]:
        """The queue and its ancestors, narrowest first (cached: the tree never changes)."""
        cached = self._paths.get(queue)
        if cached is not None:
            return cached
        chain, name = [], queue
        while name is not None and name in self.specs:
            chain.append(name)
            name = self.specs[name].parent
        self._paths[queue] = chain
        return chain

    def add(self, queue: str, request: Mapping[str, float], sign: float = 1.0) -> None:
        """Count a running request (sign -1 to remove it) in the queue and its ancestors."""
        if self._journal is not None:
            self._journal.append((queue, request, sign))
        self.ensure(queue)
        self.version += 1
        held = self._held
        for name in self.path(queue):
            self._shares.pop(name, None)
            used = self.usage[name]
            kept = self._kept[name]
            parent = self.specs[name].parent
            for resource, amount in request.items():
                before = used.get(resource, 0.0)
                after = before + sign * amount
                used[resource] = after
                floor = kept.get(resource, 0.0)
                key = (parent, resource)
                held[key] = held.get(key, 0.0) + max(after, floor) - max(before, floor)

    # ------------------------------------------------------------------ limits
    def guaranteed(self, queue: str, resource: str) -> float:
        return self._guaranteed[queue].get(resource, 0.0)

    def ceiling(self, queue: str, resource: str) -> float:
        """Most the queue may use of a resource: guarantee plus borrow limit."""
        cached = self._ceilings.get((queue, resource))
        if cached is not None:
            return cached
        spec = self.specs[queue]
        if spec.unlimited:
            value = INF
        else:
            limits = spec.borrow_limit
            borrow = INF if limits is None else float(limits.get(resource, INF))
            value = self.guaranteed(queue, resource) + borrow
        self._ceilings[(queue, resource)] = value
        return value

    def kept(self, queue: str, resource: str) -> float:
        """The part of a queue's guarantee it never lends out."""
        return self._kept[queue].get(resource, 0.0)

    def used(self, queue: str, resource: str) -> float:
        return self.usage.get(queue, {}).get(resource, 0.0)

    def borrowing(self, queue: str) -> bool:
        """True when the queue uses more than its guarantee of some resource."""
        spec = self.specs.get(queue)
        if spec is None or spec.unlimited:
            return True
        return any(
            amount > self.guaranteed(queue, resource) + 1e-9
            for resource, amount in self.usage[queue].items()
        )

    # ------------------------------------------------------------------ admission
    def check(self, queue: str, request: Mapping[str, float]) -> str | None:
        """None when the request is admissible, else the reason it is not."""
        self.ensure(queue)
        for resource, amount in request.items():
            if amount <= 0:
                continue
            reason = self._check_resource(queue, resource, amount)
            if reason:
                return reason
        return None

    def never_admits(self, queue: str, request: Mapping[str, float]) -> str | None:
        """Why the request could not be admitted even with its queue (and every queue above
        it) idle: it exceeds a guarantee plus borrow limit on its own. None otherwise."""
        self.ensure(queue)
        for resource, amount in request.items():
            for name in self.path(queue):
                ceiling = self.ceiling(name, resource)
                if amount > ceiling + 1e-9:
                    return (f"queue {name}: {resource} {amount:g} is more than its guarantee "
                            f"plus borrow limit, {ceiling:g}, allow at any time")
        return None

    def _check_resource(self, queue: str, resource: str, amount: float) -> str | None:
        usage, guaranteed, specs = self.usage, self._guaranteed, self.specs
        for name in self.path(queue):
            after = usage[name].get(resource, 0.0) + amount
            guarantee = guaranteed[name].get(resource, 0.0)
            if after <= guarantee + 1e-9:
                return None
            ceiling = self.ceiling(name, resource)
            if after > ceiling + 1e-9:
                return (
                    f"queue {name}: {resource} would reach {after:g}, over its guarantee "
                    f"{guarantee:g} plus borrow limit {ceiling - guarantee:g}"
                )
            if specs[name].unlimited:
                return None
            reason = self._check_room(name, resource, amount)
            if reason:
                return reason
        return None

    def _check_room(self, queue: str, resource: str, amount: float) -> str | None:
        """Borrowing: the siblings' kept, unused guarantees and the parent's cap bound it.

        `_held[(parent, resource)]` is kept up to date by `add`: the sum over the parent's
        children of max(usage, the guarantee each keeps from lending)."""
        parent = self.specs[queue].parent
        used, floor = self.used(queue, resource), self.kept(queue, resource)
        held = (self._held.get((parent, resource), 0.0) - max(used, floor)
                + max(used + amount, floor))
        cap = self.capacity.get(resource, 0.0)
        if parent is not None:
            cap = min(cap, self.ceiling(parent, resource))
        if held > cap + 1e-9:
            where = "the cluster" if parent is None else f"parent queue {parent}"
            return (
                f"queue {queue}: borrowing {resource} — {held:g} would be held under {where}, "
                f"which has {cap:g}"
            )
        return None

    # ------------------------------------------------------------------ fair share
    def dominant_share(self, queue: str) -> float:
        """Dominant-resource share of the queue, divided by its weight (DRF)."""
        cached = self._shares.get(queue)
        if cached is not None:
            return cached
        spec = self.specs.get(queue)
        weight = spec.weight if spec else 1.0
        share = 0.0
        for resource, amount in self.usage.get(queue, {}).items():
            capacity = self.capacity.get(resource, 0.0)
            if capacity > 0:
                share = max(share, amount / capacity)
        self._shares[queue] = share / max(weight, 1e-9)
        return self._shares[queue]
