"""What one scheduling cycle decided: starts (with placements), preemptions, and a reason for
every job left pending. `to_dict()` is the documented JSON of `suan schedule --json`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from suan.cluster.snapshot import ReplicaPlacement
from suan.jobs.model import Job


class WaitCode(StrEnum):
    """Why a job waits, as a machine-readable code beside the sentence."""

    QUOTA = "quota"
    CAPACITY = "capacity"
    CONSTRAINT = "constraint"
    UNSCHEDULABLE = "unschedulable"
    RESERVED = "reserved"
    RESERVATION = "reservation"
    HEAD_OF_LINE = "head-of-line"
    PREEMPTING = "preempting"


@dataclass(frozen=True)
class Start:
    """Start `job` with these replica placements; `why` says why this placement."""

    job: Job
    replicas: tuple[ReplicaPlacement, ...]
    why: str
    accelerators: tuple[str | None, ...] = ()
    after_preempting: tuple[str, ...] = ()
    backfilled: bool = False


@dataclass(frozen=True)
class Preemption:
    """Stop running `job` so that `for_job` can start; `reason` says why it was chosen."""

    job: str
    reason: str
    for_job: str


class Pending(NamedTuple):
    """A job that waits, with its reason. (A tuple: one is made per waiting job per cycle.)"""

    job: str
    reason: str
    code: WaitCode


@dataclass
class Decisions:
    starts: list[Start] = field(default_factory=list)
    preemptions: list[Preemption] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    reservation: dict[str, Any] | None = None

    def started(self) -> dict[str, Start]:
        return {start.job.name: start for start in self.starts}

    def reasons(self) -> dict[str, Pending]:
        return {wait.job: wait for wait in self.pending}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of a dry-run cycle (see docs/schedule-json.md)."""
        return {
            "placements": [_placement_json(start) for start in self.starts],
            "preemptions": [
                {"job": p.job, "reason": p.reason, "for_job": p.for_job} for p in self.preemptions
            ],
            "pending": [
                {"job": w.job, "reason": w.reason, "code": str(w.code)} for w in self.pending
            ],
            "reservation": self.reservation,
        }


def _placement_json(start: Start) -> dict[str, Any]:
    replicas = []
    for replica in start.replicas:
        entry: dict[str, Any] = {
            "node": replica.node,
            "devices": list(replica.devices),
            "group": start.job.groups[replica.group].name,
        }
        if replica.milli != 1000:
            entry["share"] = replica.milli / 1000
        replicas.append(entry)
    return {
        "job": start.job.name,
        "replicas": replicas,
        "reason": start.why,
        "accelerators": list(start.accelerators),
        "after_preempting": list(start.after_preempting),
        "backfilled": start.backfilled,
    }
