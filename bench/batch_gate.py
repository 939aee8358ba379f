"""Benchmark: the dependency and array filter the reconciler runs before each scheduling
pass, over many waiting jobs in a SQLite store; print JSON.

    python bench/batch_gate.py [--jobs 10000] [--repeats 5]

The store holds `--jobs` waiting jobs: half members of throttled arrays of 100 (`%4`), half
single jobs each waiting (`afterok`) for one of 100 running jobs, plus those 100. The minimum
CPU time of `suan.control.batch_gate.gate` over them is reported beside its budget: a tenth
of the reconciler's default tick (0.25 s), so that the filter never decides how often the
queue is scheduled.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suan.control.batch_gate import gate
from suan.control.models import JobRow
from suan.control.reconciler import Reconciler
from suan.control.store import Store, database_url

BUDGET_S = 0.025
"""CPU seconds allowed for the filter over 10,000 waiting jobs: a tenth of the 0.25 s tick."""
TARGETS = 100
ARRAY_SIZE = 100


def _row(job_id: str, state: str, at: float, **fields: object) -> JobRow:
    return JobRow(id=job_id, name="bench", user="alice", queue="default", state=state,
                  document="{}", checkpoint_dir="", submit_time=at, attempt=int(state != "pending"),
                  **fields)


def fill(store: Store, jobs: int) -> None:
    """The jobs described in the module doc."""
    with store.session() as session:
        for target in range(TARGETS):
            session.add(_row(f"target-{target}", "running", 0.0))
        for index in range(jobs // 2):
            array = index // ARRAY_SIZE
            session.add(_row(f"array-{array}-{index % ARRAY_SIZE}", "pending", 1.0 + index,
                             array_id=f"array-{array}", array_index=index % ARRAY_SIZE,
                             array_count=ARRAY_SIZE, array_limit=4))
        for index in range(jobs - jobs // 2):
            waits = json.dumps([["afterok", f"target-{index % TARGETS}"]])
            session.add(_row(f"single-{index}", "pending", 1.0 + jobs + index, waits_for=waits))
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        store = Store.open(database_url(Path(home)))
        fill(store, args.jobs)
        times, ready = [], 0
        with store.session() as session:
            queued = Reconciler._queued(session)
            for _ in range(args.repeats):
                began = time.process_time()
                found = gate(session, queued)
                times.append(time.process_time() - began)
                ready = len(found.ready)
        store.close()
    budget = BUDGET_S * args.jobs / 10_000
    print(json.dumps({
        "benchmark": "batch_gate",
        "waiting_jobs": args.jobs,
        "ready": ready,
        "cpu_s_min": round(min(times), 4),
        "budget_cpu_s": budget,
        "within_budget": min(times) <= budget,
    }, indent=2))


if __name__ == "__main__":
    main()
