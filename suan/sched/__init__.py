"""The scheduler: a pure function from a cluster snapshot and pending jobs to decisions.

    decisions = schedule(snapshot, pending, policy="default")
"""

from suan.sched.cycle import schedule
from suan.sched.decisions import Decisions, Pending, Preemption, Start, WaitCode
from suan.sched.policy import POLICIES, Policy, get_policy

__all__ = [
    "POLICIES",
    "Decisions",
    "Pending",
    "Policy",
    "Preemption",
    "Start",
    "WaitCode",
    "get_policy",
    "schedule",
]
