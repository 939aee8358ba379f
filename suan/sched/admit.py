"""Admission plugins: which quota book a placement is checked against.

- `QUOTAS`: the queues' quotas with borrowing and lending (`suan.sched.quota`);
- `OPEN`: none (every placement is admitted; usage is still booked for fair share).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suan.sched.cyclestate import CycleState
    from suan.sched.quota import QuotaBook


@dataclass(frozen=True)
class QuotaAdmission:
    """Admit a placement only within its queue's quota (guarantee plus what it may borrow)."""

    name: str = "quota"

    def book(self, cycle: CycleState) -> QuotaBook | None:
        return cycle.quota


@dataclass(frozen=True)
class OpenAdmission:
    """Admit every placement."""

    name: str = "open"

    def book(self, cycle: CycleState) -> QuotaBook | None:
        return None


QUOTAS = QuotaAdmission()
OPEN = OpenAdmission()
