"""Every registered policy decides as recorded on a fixed set of scenarios.

tests/fixtures/sched_decisions.json holds the decisions an earlier scheduler made on the
scenarios of `sched_scenarios` (recorded by tests/record_sched_decisions.py); a change to the
scheduler's structure must leave every one of them as it was. The entries of
`las-preemptive` and `srtf-preemptive` were recorded when those policies lived in the
simulator: each job's priority replaced by the simulator's priority view (LAS level of its
attained service; minus its remaining seconds), then the `priority` policy's cycle.
"""

from __future__ import annotations

import json

import pytest
from record_sched_decisions import RECORDED
from sched_scenarios import SCENARIOS, decide

from suan.sched import POLICIES

EXPECTED: dict[str, dict[str, object]] = json.loads(RECORDED.read_text())
CASES = [(policy, scenario) for policy in sorted(EXPECTED) for scenario in sorted(SCENARIOS)]


def test_every_registered_policy_is_recorded_with_every_scenario():
    assert set(EXPECTED) == set(POLICIES.names())
    assert all(set(per) == set(SCENARIOS) for per in EXPECTED.values())


@pytest.mark.parametrize(("policy", "scenario"), CASES)
def test_decisions_are_as_recorded(policy: str, scenario: str):
    assert decide(SCENARIOS[scenario], policy) == EXPECTED[policy][scenario]
