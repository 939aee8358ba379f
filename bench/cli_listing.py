"""Benchmark: print a `suan jobs` listing of many jobs in each output; print JSON.

    python bench/cli_listing.py [--jobs 10000] [--repeats 3]

The rows go through `suan.cli.listing.show` with stdout sent to /dev/null (a pipe: one
tab-separated line per job; json; yaml), `--repeats` times each; the minimum CPU time of one
listing is reported beside the budget of 1 s for 10,000 jobs (the API's largest page), so
that printing never costs more than fetching the page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_S_PER_10K = 1.0
"""CPU seconds allowed to print 10,000 jobs in any output."""


def fake_jobs(count: int) -> list[dict[str, object]]:
    """`count` job records shaped as GET /v1/jobs answers them."""
    now = time.time()
    return [
        {"id": f"llama-pretrain-{i:06d}-3fa2c1", "name": f"llama-pretrain-{i:06d}",
         "user": "alice", "queue": "team-a", "state": "pending", "priority": 0, "ranks": 4,
         "devices": 32.0, "submit_time": now - i, "start_time": None, "end_time": None,
         "attempt": 0, "restarts": 0, "reason": "needs 32 H100 [quota] but 8 are free",
         "reason_code": "quota", "exit_code": None, "stopping": None}
        for i in range(count)
    ]


def measure(jobs: list[dict[str, object]], output: str, repeats: int) -> float:
    """The minimum CPU seconds of printing `jobs` as `output` to /dev/null."""
    from suan.cli.jobs_cmd import JOB_COLUMNS, _job_row
    from suan.cli.listing import Listing, Output, show

    best = float("inf")
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for _ in range(repeats):
            start = time.process_time()
            show(Listing(JOB_COLUMNS, [_job_row(job) for job in jobs], jobs), Output(output))
            best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    jobs = fake_jobs(args.jobs)
    budget = BUDGET_S_PER_10K * args.jobs / 10_000
    cpu = {output: round(measure(jobs, output, args.repeats), 4)
           for output in ("table", "wide", "json", "yaml")}
    print(json.dumps({
        "benchmark": "cli_listing",
        "jobs": args.jobs,
        "stdout": "not a terminal (tab-separated lines)",
        "cpu_s_min": cpu,
        "budget_cpu_s": budget,
        "within_budget": {output: seconds <= budget for output, seconds in cpu.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
