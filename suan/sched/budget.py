"""The budget of one scheduling cycle: how many jobs it may start before it stops.

A cycle over a large queue after capacity frees up could start tens of thousands of jobs
(the first cycle on an empty 800,000-device cluster starts about 50,000), which in Python
takes seconds while every other decision waits. As Slurm bounds its main scheduler
(`sched_max_job_start`), a cycle stops considering jobs once it has made `MAX_STARTS`
starts: the jobs it did not come to get `WaitCode.DEFERRED` (or a verdict it remembers for
their shape), `Decisions.deferred` counts them, and the caller runs the next cycle at once.
The bound is a count, never wall time, so a replay makes the same decisions on any machine.

`MAX_STARTS` comes from the latency target of a cycle, 1 s at the 99th percentile for
100,000 nodes and 1,000,000 pending gangs (docs/scheduler.md, "Large queues"): half of it
for starts, at the measured cost of a start there (about 0.14 ms of CPU time per start in
the first cycle of `bench/scheduler_scale.py` at that size, placement, quota and bookkeeping
included) gives 0.5 s / 0.14 ms = 3,571, rounded down to 3,000; the other half is left for
the work that does not depend on starts (the ledger from the snapshot, one placement attempt
per class of alike jobs, preemption attempts).
"""

from __future__ import annotations

MAX_STARTS = 3_000
"""Starts one cycle may make before it defers the rest to the next cycle (see above)."""


def check_max_starts(value: int) -> int:
    """`value` when it is a usable budget; ValueError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_starts must be a whole number of starts >= 1, got {value!r}")
    return value
