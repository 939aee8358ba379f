"""`/metrics` scrape time with a large store and cluster.

A real API (create_app, served by uvicorn on 127.0.0.1 in this process) over a SQLite store
holding `--jobs` jobs written in bulk as the API writes them (bench/control_load.py's way):
half hold devices (one 8-device replica on a node each, or one device), a third wait with a
mix of wait codes, the rest have ended, spread over 10 queues with guarantees; the cluster is
`--nodes` 8xH100 nodes of a scripted engine (suan.exec.scripted), 1% cordoned, 1% down and
1% with a broken device. Each of `--repeats` scrapes (after 3 warm-up ones) is a GET of
`/metrics` with the scrape token, timed on the wall clock; the CPU time of the whole process
over the scrapes (client and server) is reported too. Target: p95 < 100 ms.

    .venv/bin/python bench/metrics_scrape.py [--jobs 10000] [--nodes 1000] [--repeats 50]

stdout gets one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's suan

TARGET_P95_S = 0.1
QUEUES = 10
JOB = (
    "apiVersion: suan.ai/v1\nkind: Job\nmetadata: {name: load}\nspec:\n"
    "  replicas: 1\n  accelerators: {count: 1, type: H100}\n  command: ['true']\n"
)
WAIT_CODES = ("capacity", "quota", "shape", "health", "reservation", "backoff", "")


def cluster(nodes: int):
    """`nodes` 8xH100 nodes: every 100th cordoned, every 100th (offset 1) down, every 100th
    (offset 2) with device 7 broken."""
    from suan.cluster.generate import cluster_from_shorthand
    from suan.cluster.model import NodeHealth

    made = list(cluster_from_shorthand(f"{nodes}x8xH100").nodes)
    for index in range(0, nodes, 100):
        made[index] = replace(made[index], health=NodeHealth.CORDONED)
        if index + 1 < nodes:
            made[index + 1] = replace(made[index + 1], health=NodeHealth.DOWN)
        if index + 2 < nodes:
            made[index + 2] = replace(made[index + 2], unhealthy_devices=frozenset({7}))
    return tuple(made)


def fill(store, home: Path, nodes, jobs: int) -> dict[str, int]:
    """Write `jobs` jobs and the queues; counts by state."""
    from sqlalchemy import insert

    from suan.cluster.snapshot import ReplicaPlacement
    from suan.control.jobs import placement_json
    from suan.control.models import JobRow, QueueRow
    from suan.control.submit import raw_documents

    document = json.dumps(raw_documents(JOB)[0])
    now = time.time()
    usable = [n for n in nodes if n.health.schedulable and not n.unhealthy_devices]
    whole = len(usable) // 2  # half the usable nodes run one 8-device replica each
    slots = [(n.name, d) for n in usable[whole:] for d in range(8)]
    rows, counts = [], {"running": 0, "pending": 0, "succeeded": 0}
    for i in range(jobs):
        row = dict(id=f"load-{i:06d}", name="load", user=f"user{i % 50}",
                   queue=f"team-{i % QUEUES}", state="pending", document=document,
                   checkpoint_dir=str(home / "jobs" / f"load-{i:06d}"), workdir="",
                   submit_time=now - i, attempt=0, restarts=0, reason="", reason_code="",
                   cancel_requested=False, stop_reason="", placement=None)
        if i < jobs // 2 and (i < whole or i - whole < len(slots)):
            if i < whole:
                replicas = (ReplicaPlacement(0, usable[i].name, tuple(range(8))),)
            else:
                node, device = slots[i - whole]
                replicas = (ReplicaPlacement(0, node, (device,)),)
            row.update(state="running", attempt=1, start_time=now,
                       placement=placement_json(replicas, "H100-SXM-80GB", "bench"))
        elif i < jobs // 2 + jobs // 3:
            row.update(reason_code=WAIT_CODES[i % len(WAIT_CODES)], reason="waiting")
        else:
            row.update(state="succeeded", attempt=1, end_time=now)
        counts[row["state"]] += 1
        rows.append(row)
    queues = [dict(name=f"team-{q}", updated_at=now, document=json.dumps({
        "apiVersion": "suan.ai/v1", "kind": "Queue", "metadata": {"name": f"team-{q}"},
        "spec": {"guaranteed": {"H100": 400, "accelerators": 400}}})) for q in range(QUEUES)]
    with store.session() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(JobRow), rows[start:start + 5000])
        session.execute(insert(QueueRow), queues)
    return counts


def serve(app) -> tuple[str, threading.Thread, object]:
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", thread, server


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    import httpx

    from suan.control.api import Services, create_app
    from suan.control.config import ControlConfig
    from suan.control.inventory import ClusterInventory
    from suan.control.metrics import ControlMetrics
    from suan.control.store import Store, database_url
    from suan.exec.scripted import RankScript, ScriptedEngine, ScriptedExecutor

    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        store = Store.open(database_url(home))
        nodes = cluster(args.nodes)
        counts = fill(store, home, nodes, args.jobs)
        executor = ScriptedExecutor(ScriptedEngine(nodes, lambda *_: RankScript(1.0)))
        inventory = ClusterInventory(executor, period_s=5.0)
        services = Services(store, executor, ControlConfig(home=home), inventory,
                            metrics=ControlMetrics(), metrics_token="bench-scrape-token-0001")
        url, thread, server = serve(create_app(services))
        headers = {"Authorization": "Bearer bench-scrape-token-0001"}
        times: list[float] = []
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for _ in range(3):
                answer = client.get("/metrics")
                answer.raise_for_status()
            cpu = time.process_time()
            for _ in range(args.repeats):
                began = time.perf_counter()
                answer = client.get("/metrics")
                times.append(time.perf_counter() - began)
                answer.raise_for_status()
            cpu = (time.process_time() - cpu) / args.repeats
        server.should_exit = True
        thread.join(10)
        store.close()
    series = sum(1 for line in answer.text.splitlines() if line and not line.startswith("#"))
    print(json.dumps({
        "bench": "metrics_scrape",
        "jobs": args.jobs,
        "jobs_by_state": counts,
        "nodes": args.nodes,
        "devices": 8 * args.nodes,
        "repeats": args.repeats,
        "scrape_p50_s": round(statistics.median(times), 4),
        "scrape_p95_s": round(percentile(times, 0.95), 4),
        "scrape_min_s": round(min(times), 4),
        "scrape_max_s": round(max(times), 4),
        "cpu_per_scrape_s": round(cpu, 4),
        "response_bytes": len(answer.content),
        "series": series,
        "target_p95_s": TARGET_P95_S,
        "meets_target": percentile(times, 0.95) < TARGET_P95_S,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
