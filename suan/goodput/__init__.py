"""Goodput: where a job's wall time went (queue, own waits, restarts, lost work, hangs,
stragglers, checkpoints, productive time) and Google's three factors, scheduling x runtime x
program goodput. `breakdown` is pure over a `Timeline`; `suan.goodput.store` reads timelines
from the control plane's store. See docs/goodput.md."""

from suan.goodput.breakdown import Breakdown, breakdown
from suan.goodput.timeline import Mark, Record, Timeline

__all__ = ["Breakdown", "Mark", "Record", "Timeline", "breakdown"]
