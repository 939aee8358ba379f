"""What one scheduling cycle hands the next: an immutable, serialisable `CarriedState`.

`schedule(snapshot, pending, policy, state)` returns `(decisions, state.after_cycle(...))`;
the caller keeps the state and passes it to its next cycle. Everything the snapshot already
says (nodes, running jobs, queues, learned service classes) stays in the snapshot; the state
holds only what no snapshot can, today how many cycles ran.

Two things a caller may keep between cycles are caches, not state, because dropping them
changes no decision (tests check both):
- a working ledger (`suan.sched.warm.WarmLedger`, with its counts of preemptible jobs and its
  rank views), which the simulator keeps so a cycle need not rebuild it from the snapshot;
- the pending index (`suan.sched.pending_index.PendingIndex`): waiting jobs filed in classes
  of jobs a cycle treats alike, kept sorted as jobs arrive and leave, so a cycle walks class
  heads instead of sorting a million jobs.

Blocked jobs are not parked across cycles: each cycle judges the head of every class again
(one judgement per class, not per job), so reasons are always current and a cordon,
uncordon, freed capacity or quota edit is seen at the next cycle without an event to wake
anyone. The cost is one judgement per class per cycle; see docs/scheduler.md ("Classes of
alike jobs") for what that costs on a queue of mostly distinct jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suan.errors import FieldProblem, SpecError
from suan.sched.decisions import Decisions


@dataclass(frozen=True)
class CarriedState:
    """The state kept between cycles (see the module docstring)."""

    cycles: int = 0

    def after_cycle(self, decisions: Decisions) -> CarriedState:
        """The state to hand the next cycle after one that decided `decisions`."""
        return CarriedState(self.cycles + 1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; `from_dict` reads it back."""
        return {"cycles": self.cycles}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CarriedState:
        """Read `to_dict`'s form; SpecError names the field of a mistake."""
        cycles = data.get("cycles", 0)
        unknown = sorted(set(data) - {"cycles"})
        problems: list[FieldProblem] = []
        if not isinstance(cycles, int) or isinstance(cycles, bool) or cycles < 0:
            problems.append(FieldProblem("cycles", f"must be an integer >= 0, got {cycles!r}"))
        for name in unknown:
            problems.append(FieldProblem(name, "is not a field of the carried state (cycles)"))
        if problems:
            raise SpecError("carried state", problems)
        return cls(cycles)
