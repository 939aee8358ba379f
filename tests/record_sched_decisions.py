"""Record every registered policy's decisions on the fixed scenarios of `sched_scenarios`.

    python tests/record_sched_decisions.py   # rewrites tests/fixtures/sched_decisions.json

Run it only to add a scenario or a policy: tests/test_sched_recorded.py compares the
scheduler's decisions with this file, which holds what an earlier scheduler decided.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
RECORDED = HERE / "fixtures" / "sched_decisions.json"


def decide_all() -> dict[str, dict[str, object]]:
    """{policy: {scenario: decisions as a dict}} for every registered policy."""
    sys.path.insert(0, str(HERE))
    from sched_scenarios import SCENARIOS, decide

    from suan.sched import POLICIES

    return {policy.name: {name: decide(build, policy.name)
                          for name, build in SCENARIOS.items()}
            for policy in POLICIES}


if __name__ == "__main__":
    RECORDED.write_text(json.dumps(decide_all(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORDED}")
