"""Dependencies and array throttles in a replay, decided by the control plane's own rule.

The control plane offers the scheduler only the waiting jobs whose dependencies are met and
whose array is under its throttle (`suan.control.batch_gate`); the simulator does the same.
A job whose dependencies are not all met is HELD with the wait code `dependency`. It is
judged by `batch_gate.outcome` (the control plane's pure rule: `verdict` per dependency) when
it arrives, then, as each job it names starts or ends, by `verdict` on the dependencies naming
that job (a met dependency stays met, so the others need no new look, and a job waiting for
thousands of array members costs one look per member): all met, it is offered and forgets them
(a later restart of a target does not hold it back); one never to be met, it is cancelled with
the control plane's reason (`outcome`'s for that dependency). Its wait reason ("waits for jobs
a, b to succeed", `batch_gate.waits_reason`) is put together when asked for
(`BatchGate.reason`). A member of a throttled array, its dependencies met, is offered only
within its array's room (the throttle less its members running), lowest index first; the
others are HELD with the wait code `array-limit`.

A job's simulator status reads as the control-plane state in `TARGET_STATES`: a job not yet
submitted, or waiting, is `pending`; a job the cluster can never hold (REJECTED) is
`cancelled`, so that what depends on it is decided rather than left waiting for ever.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from suan.sched.decisions import WaitCode
from suan.sim.state import JobState, Status

TARGET_STATES: dict[Status, str] = {
    Status.FUTURE: "pending",
    Status.PENDING: "pending",
    Status.HELD: "pending",
    Status.RUNNING: "running",
    Status.DONE: "succeeded",
    Status.TIMEOUT: "timeout",
    Status.CANCELLED: "cancelled",
    Status.REJECTED: "cancelled",
}
DEPENDENCY = WaitCode.DEPENDENCY.value
ARRAY_LIMIT = WaitCode.ARRAY_LIMIT.value
Targets = dict[str, tuple[str, bool]]
Outcome = Callable[[list[list[str]], Targets], tuple[str, str]]


@dataclass
class ArrayRoom:
    """One throttled array: its throttle, its members running, and its members that wait
    with their dependencies met, as (array index, job index), ascending."""

    array_id: str
    limit: int
    running: int = 0
    ready: list[tuple[int, int]] = field(default_factory=list)
    offered: set[int] = field(default_factory=set)
    """Job indices of the members offered to the scheduler now."""

    def add(self, state: JobState) -> None:
        bisect.insort(self.ready, (state.trace.array_index or 0, state.index))

    def discard(self, state: JobState) -> None:
        key = (state.trace.array_index or 0, state.index)
        at = bisect.bisect_left(self.ready, key)
        if at < len(self.ready) and self.ready[at] == key:
            del self.ready[at]
        self.offered.discard(state.index)

    def may_offer(self) -> list[int]:
        """The job indices of the waiting members within the room, lowest index first."""
        return [index for _, index in self.ready[: max(0, self.limit - self.running)]]

    def reason(self) -> str:
        noun = "member" if self.limit == 1 else "members"
        return f"array {self.array_id} runs at most {self.limit} {noun} at once"


class BatchGate:
    """The dependencies and throttled arrays of a replay's jobs (see the module doc)."""

    def __init__(self, states: Sequence[JobState]):
        from suan.control import batch_gate  # the control plane's modules load late

        self.outcome: Outcome = batch_gate.outcome
        self.verdict: Callable[[str, str | None, bool], str] = batch_gate.verdict
        self.waits_reason: Callable[[list[tuple[str, str]]], str] = batch_gate.waits_reason
        self.unmet: dict[int, dict[str, list[str]]] = {}
        """Job index -> target -> the kinds of its dependencies on it not met yet."""
        self.by_name = {state.job.name: state for state in states}
        self.dependents: dict[str, list[JobState]] = defaultdict(list)
        self.arrays: dict[str, ArrayRoom] = {}
        for state in states:
            for _, target in state.trace.dependencies:
                self.dependents[target].append(state)
            array_id, limit = state.trace.array_id, state.trace.array_limit
            if array_id and limit is not None and array_id not in self.arrays:
                self.arrays[array_id] = ArrayRoom(array_id, limit)

    @staticmethod
    def needed(states: Sequence[JobState]) -> bool:
        """Whether any job has dependencies or belongs to a throttled array."""
        return any(state.trace.dependencies or state.trace.array_limit is not None
                   for state in states)

    def judge(self, state: JobState, changed: JobState | None = None) -> tuple[str, str]:
        """("met" | "wait" | "never", the reason for "never") for `state`'s dependencies now;
        `changed`: the one job named that started or ended since the last look."""
        unmet = self.unmet.get(state.index)
        if changed is None or unmet is None:
            return self._first_look(state)
        kinds = unmet.get(changed.job.name)
        if not kinds:
            return "wait", ""
        target = self._state_of(changed.job.name)
        for kind in kinds:
            if self.verdict(kind, *target) == "never":
                return self.outcome([[kind, changed.job.name]], {changed.job.name: target})
        kinds[:] = [kind for kind in kinds if self.verdict(kind, *target) == "wait"]
        if not kinds:
            del unmet[changed.job.name]
        if unmet:
            return "wait", ""
        del self.unmet[state.index]
        return "met", ""

    def _first_look(self, state: JobState) -> tuple[str, str]:
        pairs = [[kind, target] for kind, target in state.trace.dependencies]
        targets = {name: self._state_of(name) for _, name in pairs if name in self.by_name}
        answer, reason = self.outcome(pairs, targets)
        if answer == "wait":
            unmet: dict[str, list[str]] = defaultdict(list)
            for kind, name in pairs:
                if self.verdict(kind, *targets[name]) == "wait":
                    unmet[name].append(kind)
            self.unmet[state.index] = dict(unmet)
        return answer, reason

    def _state_of(self, name: str) -> tuple[str, bool]:
        """A job's state as the control plane's rule reads it, and whether it started."""
        target = self.by_name[name]
        return TARGET_STATES[target.status], target.runs > 0

    def reason(self, state: JobState) -> str:
        """Why a job held for its dependencies waits, in the control plane's words."""
        unmet = self.unmet.get(state.index, {})
        return self.waits_reason([(kind, name) for name, kinds in unmet.items()
                                  for kind in kinds])

    def waiting_on(self, state: JobState) -> list[JobState]:
        """The jobs held for their dependencies that name `state` (each once)."""
        found = {dependent.index: dependent
                 for dependent in self.dependents.get(state.job.name, ())
                 if dependent.status == Status.HELD and dependent.wait_code == DEPENDENCY}
        return list(found.values())

    def room_of(self, state: JobState) -> ArrayRoom | None:
        return self.arrays.get(state.trace.array_id) if state.trace.array_id else None
