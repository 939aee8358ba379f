"""Benchmark: time one planner search over a 16,384-device cluster; print JSON.

    python bench/planner_search.py [--model llama3-70b] [--accelerator H100] [--devices 16384]
"""

from __future__ import annotations

import argparse
import json
import time

from suan.plan.hardware import hardware_for
from suan.plan.layout import Workload
from suan.plan.models import load_model
from suan.plan.search import search

BUDGET_S = 2.0
"""The planner's target: one search of a 16,384-device cluster in under two seconds."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama3-70b")
    parser.add_argument("--accelerator", default="H100")
    parser.add_argument("--devices", type=int, default=16384)
    parser.add_argument("--seq", type=int, default=8192)
    parser.add_argument("--global-batch", type=int, default=2048)
    args = parser.parse_args()
    model, hardware = load_model(args.model), hardware_for(args.accelerator)
    started = time.perf_counter()
    result = search(model, hardware, args.devices, Workload(args.seq, args.global_batch), top=3)
    elapsed = time.perf_counter() - started
    best = result.best
    print(json.dumps({
        "benchmark": "planner_search",
        "model": args.model, "accelerator": hardware.name, "devices": args.devices,
        "seq": args.seq, "global_batch": args.global_batch,
        "seconds": round(elapsed, 3), "budget_seconds": BUDGET_S,
        "within_budget": elapsed < BUDGET_S,
        "considered": result.considered, "feasible": result.feasible,
        "rejected": dict(result.rejected.most_common()),
        "best": best.layout.describe() if best else None,
        "best_mfu": round(best.mfu, 4) if best else None,
        "best_tokens_per_s": round(best.tokens_per_s) if best else None,
    }, indent=2))


if __name__ == "__main__":
    main()
