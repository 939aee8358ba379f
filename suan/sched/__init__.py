"""The scheduler: a pure function from a cluster snapshot, pending jobs and the state carried
from earlier cycles to decisions and the next state.

    decisions, state = schedule(snapshot, pending, policy="default", state=None)
    decisions = decide(snapshot, pending, policy)        # one cycle, no state kept
"""

from suan.sched.carried import CarriedState
from suan.sched.cycle import collector_paused, decide, schedule
from suan.sched.cyclestate import CycleState
from suan.sched.decisions import Decisions, Pending, Preemption, Start, WaitCode
from suan.sched.policy import POLICIES, Policy, get_policy
from suan.sched.warm import WarmLedger

__all__ = [
    "POLICIES",
    "CarriedState",
    "CycleState",
    "Decisions",
    "Pending",
    "Policy",
    "Preemption",
    "Start",
    "WaitCode",
    "WarmLedger",
    "collector_paused",
    "decide",
    "get_policy",
    "schedule",
]
