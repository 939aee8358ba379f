"""What the reconciler hands the scheduler, caught for `suan snapshot export`.

The export asks the reconciler for its next scheduling pass (`Reconciler.next_cycle`) and waits
for it: the pass builds its snapshot and pending jobs from the store as always, runs the
scheduler, and hands both and the decisions to every waiter (`Captures`). The export is thus
exactly one cycle's inputs and outcome, and `suan schedule --state FILE` on it gives the same
decisions (the scheduler is pure). A pass that runs no cycle (no job waits, or the engine
cannot be reached) hands over the snapshot it would have read, without decisions.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from suan.cluster.snapshot import Snapshot
from suan.cluster.state import state_document
from suan.jobs.model import Job
from suan.sched.decisions import Decisions


@dataclass(frozen=True)
class CycleRecord:
    """One scheduling pass: the snapshot and pending jobs it handed the scheduler, the policy,
    and the decisions (None when no cycle ran, `note` saying why)."""

    snapshot: Snapshot
    pending: tuple[Job, ...]
    policy: str
    decisions: Decisions | None
    note: str = ""


class Captures:
    """Waiters for the next pass's `CycleRecord` (thread-safe: the API's threads wait, the
    reconciler's thread delivers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[Future[CycleRecord]] = []

    @property
    def waiting(self) -> bool:
        """Whether someone waits for the next pass (a pass without a cycle then builds its
        snapshot only for them)."""
        return bool(self._waiters)

    def add(self) -> Future[CycleRecord]:
        """A new waiter for the next pass."""
        waiter: Future[CycleRecord] = Future()
        with self._lock:
            self._waiters.append(waiter)
        return waiter

    def wait(self, waiter: Future[CycleRecord], timeout: float) -> CycleRecord:
        """The record `waiter` gets; TimeoutError (and the waiter withdrawn) after `timeout`."""
        try:
            return waiter.result(timeout)
        except TimeoutError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise

    def deliver(self, record: CycleRecord) -> None:
        """Hand `record` to every waiter and forget them."""
        if not self._waiters:
            return
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set_result(record)


def export_document(record: CycleRecord, engine: str) -> dict[str, Any]:
    """The state document of `record` (docs/schedule-state.md), with the decisions the
    reconciler made from it (`decisions`, the JSON of docs/schedule-json.md; null when no
    cycle ran) and `exported`: which engine's inventory the cluster is, and the note."""
    document = state_document(record.snapshot, record.pending, record.policy)
    document["decisions"] = None if record.decisions is None else record.decisions.to_dict()
    document["exported"] = {"by": "suan server", "engine": engine, "cycle": record.decisions
                            is not None, "note": record.note}
    return document
