"""Queues (teams) and their quotas, as data.

Queues form a tree: a leaf queue holds jobs; a parent pools its children's guarantees. Each
queue has, per resource (a canonical accelerator type name, or `accelerators` for devices of any
type), a `guaranteed` amount it can always get back, a `borrow_limit` (how far above its
guarantee it may go by using what others leave unused; None = no limit) and a `lend_limit` (how
much of its unused guarantee others may borrow; None = all of it). A queue with no quota at all
is bounded only by the cluster.

Who may use a queue (the control plane enforces it; the scheduler ignores it): `admins` see and
cancel all of its jobs; `submitters` may submit to it (None: everyone, the default; a list: only
those users, `*` meaning everyone, besides its admins and cluster admins); `viewers` see its
jobs (describe, logs, listing) but may not cancel them (`*`: every user).

Time limits (seconds; None: none): a job submitted without `timeLimit` gets the queue's
`default_time_limit_s` (else its `max_time_limit_s`); one that asks for more than
`max_time_limit_s` is refused at submit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ANY_ACCELERATOR = "accelerators"
EVERYONE = "*"


@dataclass(frozen=True)
class QueueSpec:
    """One queue. `parent` is None for a top-level queue. `weight` scales its fair share."""

    name: str
    parent: str | None = None
    guaranteed: Mapping[str, float] = field(default_factory=dict)
    borrow_limit: Mapping[str, float] | None = None
    lend_limit: Mapping[str, float] | None = None
    weight: float = 1.0
    admins: tuple[str, ...] = ()
    submitters: tuple[str, ...] | None = None
    viewers: tuple[str, ...] = ()
    default_time_limit_s: float | None = None
    max_time_limit_s: float | None = None

    @property
    def open(self) -> bool:
        """Whether every user may submit to the queue."""
        return self.submitters is None or EVERYONE in self.submitters

    @property
    def unlimited(self) -> bool:
        return not self.guaranteed and self.borrow_limit is None


DEFAULT_QUEUE = QueueSpec(name="default")
