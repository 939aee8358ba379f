"""Effective training time of one long job under a failure process: a discrete-event run.

The job alternates between running and being down. While it runs it works `interval_s`, then
stops `blocking_s` to save a checkpoint, which becomes durable `write_s` after the snapshot
(`write_s == blocking_s` for a synchronous save; an asynchronous one blocks less and writes
on). An unexpected interruption loses the work since the last durable checkpoint, then costs
a detection time (a crash is seen when the process exits, a hang when a timeout fires), a
wait for a node when the fault took one out and no hot spare is free, and the restart
overhead. A planned interruption saves first (the full write), then restarts. A failed node
is repaired after `repair_s` and fills a missing place in the job, else joins the spares.

Interruptions arrive on wall time (the hardware is powered while the job is down): a fault
while the job restarts begins the recovery again; a node fault while it waits makes it wait
for one more node; a planned interruption while the job is down is done in that downtime.

Every second of the horizon lands in exactly one part of `Outcome.parts` (PARTS); work that
is not yet durable when the horizon ends counts as productive.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from suan.sim.failure_mix import FailureKind

PARTS = ("productive", "lost_work", "detection", "waiting_for_repair", "restart",
         "checkpoint", "planned")
PLANNED = -1
"""The kind of a planned interruption in an incident list (others index `Setting.kinds`)."""


@dataclass(frozen=True)
class Cadence:
    """How the job checkpoints: work between saves, the stop per save, snapshot to durable."""

    interval_s: float
    blocking_s: float
    write_s: float

    def __post_init__(self) -> None:
        if not self.interval_s > 0 or self.blocking_s < 0 or self.write_s < self.blocking_s:
            raise ValueError(f"bad cadence {self}: need interval > 0, 0 <= blocking <= write")
        if self.write_s > self.interval_s + self.blocking_s:
            raise ValueError(f"bad cadence {self}: a save must be durable before the next one")

    def split(self, elapsed_s: float) -> tuple[float, float, float]:
        """(durable work, work not yet durable, time spent saving) after running `elapsed_s`
        seconds from a restart (which starts from a durable checkpoint)."""
        period = self.interval_s + self.blocking_s
        cycles, rest = divmod(elapsed_s, period)
        worked = cycles * self.interval_s + min(rest, self.interval_s)
        saving = elapsed_s - worked
        since_first = elapsed_s - self.interval_s - self.write_s
        durable_saves = 0 if since_first < 0 else math.floor(since_first / period) + 1
        durable = min(durable_saves * self.interval_s, worked)
        return durable, worked - durable, saving


@dataclass(frozen=True)
class Setting:
    """Everything one run needs, in seconds and counts."""

    horizon_s: float
    cadence: Cadence
    restart_s: float
    repair_s: float
    spares: int
    crash_detection_s: float
    hang_detection_s: float
    kinds: tuple[FailureKind, ...]

    def detection_s(self, kind: FailureKind) -> float:
        return self.hang_detection_s if kind.hangs else self.crash_detection_s


@dataclass
class Outcome:
    """Seconds per part of the wall time, and what happened."""

    parts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))
    failures: int = 0
    planned: int = 0
    waits: int = 0

    @property
    def wall_s(self) -> float:
        return sum(self.parts.values())

    @property
    def ettr(self) -> float:
        return self.parts["productive"] / self.wall_s

    def fractions(self) -> dict[str, float]:
        wall = self.wall_s
        return {part: seconds / wall for part, seconds in self.parts.items()}


def incidents(rates_per_s: Sequence[float], planned_per_s: float, horizon_s: float,
              seed: int) -> list[tuple[float, int]]:
    """(time, kind) of every interruption in [0, horizon): a Poisson process per kind (index
    into `rates_per_s`, or PLANNED), drawn from the seed alone so rules compare on the same
    failures."""
    rng = random.Random(f"ettr:{seed}")
    weights = [*rates_per_s, planned_per_s]
    total = sum(weights)
    kinds = [*range(len(rates_per_s)), PLANNED]
    found: list[tuple[float, int]] = []
    at = rng.expovariate(total) if total > 0 else math.inf
    while at < horizon_s:
        found.append((at, rng.choices(kinds, weights)[0]))
        at += rng.expovariate(total)
    return found


class Phase(Enum):
    RUNNING = "running"
    DETECTING = "detection"
    WAITING = "waiting_for_repair"
    RESTARTING = "restart"
    PLANNED_SAVE = "planned"
    PLANNED_RESTART = "planned restart"


PHASE_PART = {Phase.DETECTING: "detection", Phase.WAITING: "waiting_for_repair",
              Phase.RESTARTING: "restart", Phase.PLANNED_SAVE: "planned",
              Phase.PLANNED_RESTART: "planned"}


class _Run:
    """The state of one run; `simulate` drives it."""

    def __init__(self, setting: Setting):
        self.setting = setting
        self.outcome = Outcome()
        self.now = 0.0
        self.phase = Phase.RUNNING
        self.phase_end = math.inf
        self.running_since = 0.0
        self.spares = setting.spares
        self.missing = 0
        self.repairs: list[float] = []
        self.unsaved_at_planned = 0.0

    def advance(self, to: float) -> None:
        """Count the time up to `to` in the current phase's part (running is counted when it
        ends)."""
        if self.phase is not Phase.RUNNING:
            self.outcome.parts[PHASE_PART[self.phase]] += to - self.now
        self.now = to

    def stop_running(self) -> float:
        """End a running stretch: count its durable work and its saving time; return the work
        not yet durable, for the caller to count."""
        durable, unsaved, saving = self.setting.cadence.split(self.now - self.running_since)
        self.outcome.parts["productive"] += durable
        self.outcome.parts["checkpoint"] += saving
        return unsaved

    def enter(self, phase: Phase, end: float = math.inf) -> None:
        """Switch to `phase`, which ends at `end` (running and waiting end on events)."""
        self.phase, self.phase_end = phase, end
        if phase is Phase.RUNNING:
            self.running_since = self.now

    def after_detection(self) -> None:
        """Wait for a node if the job lacks one, else restart."""
        if self.missing:
            self.outcome.waits += 1
            self.enter(Phase.WAITING)
        else:
            self.enter(Phase.RESTARTING, self.now + self.setting.restart_s)

    def phase_done(self) -> None:
        """The current timed phase (detection, restart, planned save or restart) ends."""
        if self.phase is Phase.DETECTING:
            self.after_detection()
        elif self.phase is Phase.PLANNED_SAVE:
            self.outcome.parts["productive"] += self.unsaved_at_planned
            self.unsaved_at_planned = 0.0
            self.enter(Phase.PLANNED_RESTART, self.now + self.setting.restart_s)
        else:
            self.enter(Phase.RUNNING)

    def node_back(self) -> None:
        """A repaired node fills a missing place in the job, else becomes a spare."""
        heapq.heappop(self.repairs)
        if not self.missing:
            self.spares += 1
            return
        self.missing -= 1
        if not self.missing and self.phase is Phase.WAITING:
            self.enter(Phase.RESTARTING, self.now + self.setting.restart_s)

    def planned(self) -> None:
        """A planned stop: save, then restart; nothing to do while the job is down."""
        if self.phase is not Phase.RUNNING:
            return
        self.outcome.planned += 1
        self.unsaved_at_planned = self.stop_running()
        self.enter(Phase.PLANNED_SAVE, self.now + self.setting.cadence.write_s)

    def fault(self, kind: FailureKind) -> None:
        """An unexpected interruption: take a spare or leave a gap for a node fault, lose
        the work not yet durable, and (re)start detection."""
        if kind.replaces_node:
            if self.spares:
                self.spares -= 1
            else:
                self.missing += 1
            heapq.heappush(self.repairs, self.now + self.setting.repair_s)
        detected = self.now + self.setting.detection_s(kind)
        if self.phase is Phase.RUNNING:
            self.outcome.failures += 1
            unsaved = self.stop_running()
            self.outcome.parts["lost_work"] += unsaved
        elif self.phase is Phase.PLANNED_SAVE:
            self.outcome.parts["lost_work"] += self.unsaved_at_planned
            self.unsaved_at_planned = 0.0
        elif self.phase is Phase.DETECTING:
            detected = max(detected, self.phase_end)
        elif self.phase is Phase.WAITING:
            return
        self.enter(Phase.DETECTING, detected)

    def finish(self) -> Outcome:
        """Close the run at the horizon; work not yet durable counts as productive."""
        if self.phase is Phase.RUNNING:
            unsaved = self.stop_running()
            self.outcome.parts["productive"] += unsaved
        elif self.phase is Phase.PLANNED_SAVE:
            self.outcome.parts["productive"] += self.unsaved_at_planned
        return self.outcome


def simulate(setting: Setting, events: Sequence[tuple[float, int]]) -> Outcome:
    """Run the job over `setting.horizon_s` through `events` (from `incidents`)."""
    run = _Run(setting)
    position = 0
    while True:
        incident_at = events[position][0] if position < len(events) else math.inf
        repair_at = run.repairs[0] if run.repairs else math.inf
        at = min(incident_at, repair_at, run.phase_end, setting.horizon_s)
        run.advance(at)
        if at >= setting.horizon_s:
            return run.finish()
        if repair_at == at:
            run.node_back()
        elif run.phase_end == at:
            run.phase_done()
        else:
            kind = events[position][1]
            position += 1
            if kind == PLANNED:
                run.planned()
            else:
                run.fault(setting.kinds[kind])
