"""Benchmark: cold and warm `type_speeds` calls as a scheduler makes them; print JSON.

    python bench/planner_type_speeds.py [--model llama3-70b] [--devices 64]
        [--types H100,H800,H20,Ascend-910B,A100-80GB] [--repeats 1000]

Cold: the first call per (model, types, devices) runs one layout search per type. Warm: the
same call again, answered from the in-process memo; its median must stay under WARM_BUDGET_S.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from suan.plan.use import clear_speed_cache, type_speeds

WARM_BUDGET_S = 0.05
"""A scheduler calls type_speeds once per distinct (model, types, devices) per cycle: 50 ms."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama3-70b")
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--types", default="H100,H800,H20,Ascend-910B,A100-80GB")
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=1000)
    args = parser.parse_args()
    types = [name.strip() for name in args.types.split(",") if name.strip()]
    clear_speed_cache()
    started = time.perf_counter()
    speeds = type_speeds(args.model, types, args.devices, seq=args.seq)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        type_speeds(args.model, types, args.devices, seq=args.seq)
        warm.append(time.perf_counter() - started)
    median = statistics.median(warm)
    print(json.dumps({
        "benchmark": "planner_type_speeds",
        "model": args.model, "devices": args.devices, "seq": args.seq, "types": types,
        "cold_seconds": round(cold, 3),
        "cold_seconds_per_type": round(cold / len(types), 3),
        "warm_median_seconds": median, "warm_max_seconds": max(warm),
        "warm_budget_seconds": WARM_BUDGET_S, "within_budget": median < WARM_BUDGET_S,
        "tokens_per_s": {name: round(speed) for name, speed in speeds.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
