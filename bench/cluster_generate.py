"""Benchmark: build synthetic clusters with the generator (`suan.cluster.generate`); print JSON.

    python bench/cluster_generate.py [--nodes 10000 100000] [--repeats 5]

Each size is built `--repeats` times; the minimum and median wall time and the minimum CPU
time of one build are reported, beside the budget of 2 s for 10,000 nodes (a benchmark or
a test that builds a 10,000-node cluster should not wait on the generator).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_S_PER_10K = 2.0
"""Wall time allowed per 10,000 nodes."""


def measure(nodes: int, repeats: int) -> dict[str, object]:
    """Build a `nodes`-node cluster `repeats` times: wall and CPU seconds of the builds."""
    from suan.cluster.generate import generate_cluster

    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        cluster = generate_cluster(nodes)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
        assert len(cluster) == nodes
    budget = BUDGET_S_PER_10K * nodes / 10_000
    return {"nodes": nodes, "devices": sum(node.devices for node in cluster),
            "wall_s_min": round(min(walls), 3), "wall_s_median": round(statistics.median(walls), 3),
            "cpu_s_min": round(min(cpus), 3), "budget_s": budget,
            "within_budget": min(walls) < budget}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({
        "benchmark": "cluster_generate", "cpus": os.cpu_count(),
        "python": platform.python_version(), "repeats": args.repeats,
        "sizes": [measure(nodes, args.repeats) for nodes in args.nodes],
    }, indent=2))


if __name__ == "__main__":
    main()
