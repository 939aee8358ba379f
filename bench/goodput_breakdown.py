"""CPU time of a job's goodput breakdown and MFU throughput over its progress records.

A job of R ranks runs three attempts (two end in a rank failure and a restart); each rank
keeps the records the progress reader keeps of a long run: the last 100 steps and every 100th
step before them (the progress reader's thinning), here 1,099 records per rank and attempt
(a 100,000-step attempt), every 500th with a checkpoint save. For each R it reports the
minimum CPU seconds (`time.process_time`) over `--repeat` runs of `breakdown` plus
`gang_tokens_per_s`, the work behind `suan describe` and `GET /v1/jobs/{id}/goodput` once the
records are read. Budget: 1 s for 256 ranks (844,032 records), the wait a person at
`suan describe` tolerates without losing the thread of what they were doing.

    python bench/goodput_breakdown.py [--ranks 8,64,256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

from suan.goodput.breakdown import breakdown
from suan.goodput.program import gang_tokens_per_s
from suan.goodput.timeline import Mark, Record, Timeline

BUDGET_S = 1.0
BUDGET_RANKS = 256
STEPS = 100_000
KEEP_RECENT, THIN_EVERY, SAVE_EVERY = 100, 100, 500


def kept_steps() -> list[int]:
    old = range(THIN_EVERY, STEPS - KEEP_RECENT + 1, THIN_EVERY)
    return [*old, *range(STEPS - KEEP_RECENT + 1, STEPS + 1)]


def timeline(ranks: int) -> Timeline:
    marks: list[Mark] = [Mark(0.0, "submitted")]
    records: list[Record] = []
    start = 10.0
    for attempt in (1, 2, 3):
        marks += [Mark(start, "scheduled"), Mark(start + 5, "running")]
        for step in kept_steps():
            seen = start + 30 + step * 0.5
            for rank in range(ranks):
                records.append(Record(attempt, rank, step, seen, tokens=step * 4096,
                                      step_time_s=0.5 + 0.01 * (rank % 7),
                                      checkpoint_s=2.0 if step % SAVE_EVERY == 0 else None))
        end = start + 30 + STEPS * 0.5 + 5
        if attempt < 3:
            marks += [Mark(end, "rank-failed", "rank 3 exited with code 137"),
                      Mark(end + 2, "restarting", "restart 1/3 in 2.0s after: rank 3")]
            start = end + 10
        else:
            marks.append(Mark(end, "succeeded"))
    return Timeline(0.0, marks[-1].time, ranks, tuple(marks), tuple(records))


def measure(ranks: int, repeat: int) -> dict[str, float]:
    job = timeline(ranks)
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        parts = breakdown(job, now=job.end_time or 0.0)
        gang_tokens_per_s(job.records)
        best = min(best, time.process_time() - began)
    return {"ranks": ranks, "records": len(job.records), "cpu_s": round(best, 3),
            "wall_s": round(parts.wall, 1), "productive_share": round(parts.productive
                                                                    / parts.wall, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="8,64,256")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = [measure(int(r), args.repeat) for r in args.ranks.split(",") if r]
    at_budget = [c for c in cases if c["ranks"] == BUDGET_RANKS]
    print(json.dumps({
        "python": platform.python_version(), "cases": cases,
        "budget_s": BUDGET_S, "budget_ranks": BUDGET_RANKS,
        "within_budget": all(c["cpu_s"] <= BUDGET_S for c in at_budget) if at_budget else None,
    }, indent=2))


if __name__ == "__main__":
    main()
