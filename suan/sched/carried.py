"""What one scheduling cycle hands the next: an immutable, serialisable `CarriedState`.

`schedule(snapshot, pending, policy, state)` returns `(decisions, state.after_cycle(...))`;
the caller keeps the state and passes it to its next cycle. Everything the snapshot already
says (nodes, running jobs, queues, learned service classes) stays in the snapshot; the state
holds only what no snapshot can: how many cycles ran, the capacity generation, and the jobs
parked as blocked. A working ledger kept between cycles for speed (`suan.sched.warm.
WarmLedger`, with its counts of preemptible jobs and its rank views) is a cache of the
snapshot, not state: dropping it changes no decision.

Parking (the unschedulable queue of kube-scheduler): a job that waits for capacity, shape,
health, constraints or quota can stay parked — left out of cycles — until an event that could
unblock it: capacity freed, a node uncordoned or healthy again, inventory added, a quota
edited. The caller reports such an event with `capacity_changed()`, which raises
`generation`; `park()` records blocked verdicts at the current generation and `woken()`
returns the names of parked jobs whose generation is older (to be considered again), with
the state that no longer holds them. Cycles do not consult `parked` yet: a caller that parks
passes the cycle only jobs that are not parked, and keeps their recorded verdicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from suan.errors import FieldProblem, SpecError
from suan.sched.decisions import Decisions, Pending, WaitCode

PARKABLE_CODES = frozenset(
    {WaitCode.CAPACITY, WaitCode.SHAPE, WaitCode.CONSTRAINT, WaitCode.UNSCHEDULABLE,
     WaitCode.HEALTH, WaitCode.QUOTA}
)
"""Verdicts that only an event outside the cycle can change (see the module docstring)."""


@dataclass(frozen=True)
class ParkedJob:
    """A blocked job left out of cycles: its verdict and the generation it was parked at."""

    job: str
    reason: str
    code: WaitCode
    generation: int


@dataclass(frozen=True)
class CarriedState:
    """The state kept between cycles (see the module docstring). `parked` is sorted by job
    name and holds each job at most once."""

    cycles: int = 0
    generation: int = 0
    parked: tuple[ParkedJob, ...] = ()

    def after_cycle(self, decisions: Decisions) -> CarriedState:
        """The state to hand the next cycle after one that decided `decisions`: parked jobs
        that started (another caller scheduled them) are dropped."""
        parked = self.parked
        if parked and decisions.starts:
            started = {start.job.name for start in decisions.starts}
            parked = tuple(p for p in parked if p.job not in started)
        return CarriedState(self.cycles + 1, self.generation, parked)

    def capacity_changed(self) -> CarriedState:
        """An event that could unblock parked jobs happened: raise the generation."""
        return replace(self, generation=self.generation + 1)

    def park(self, verdicts: Iterable[Pending]) -> CarriedState:
        """Park the jobs of `verdicts` whose code is parkable, at the current generation."""
        parked = {p.job: p for p in self.parked}
        for verdict in verdicts:
            if verdict.code in PARKABLE_CODES:
                parked[verdict.job] = ParkedJob(verdict.job, verdict.reason, verdict.code,
                                                self.generation)
        return replace(self, parked=tuple(parked[name] for name in sorted(parked)))

    def woken(self) -> tuple[tuple[str, ...], CarriedState]:
        """(names of parked jobs older than the current generation, the state without
        them)."""
        stale = tuple(p.job for p in self.parked if p.generation < self.generation)
        if not stale:
            return (), self
        kept = tuple(p for p in self.parked if p.generation >= self.generation)
        return stale, replace(self, parked=kept)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; `from_dict` reads it back."""
        return {"cycles": self.cycles, "generation": self.generation,
                "parked": [{"job": p.job, "reason": p.reason, "code": str(p.code),
                            "generation": p.generation} for p in self.parked]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CarriedState:
        """Read `to_dict`'s form; SpecError names the field of a mistake."""
        problems: list[FieldProblem] = []
        cycles, generation = data.get("cycles", 0), data.get("generation", 0)
        for name, value in (("cycles", cycles), ("generation", generation)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(FieldProblem(name, f"must be an integer >= 0, got {value!r}"))
        parked = []
        for index, entry in enumerate(data.get("parked", ())):
            try:
                parked.append(ParkedJob(str(entry["job"]), str(entry["reason"]),
                                        WaitCode(entry["code"]), int(entry["generation"])))
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(FieldProblem(f"parked.{index}", f"is not a parked job: {exc}"))
        if problems:
            raise SpecError("carried state", problems)
        return cls(cycles, generation, tuple(sorted(parked, key=lambda p: p.job)))
