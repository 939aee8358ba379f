"""Dashboard page load: each page's time in a real browser with a large store.

A server process runs the real API and dashboard (suan.control.api.create_app under uvicorn,
on 127.0.0.1) over a SQLite store holding `--jobs` jobs (bulk-inserted as the API writes them:
a quarter running with placements, half pending with reason codes, the rest ended) and an
inventory of `--nodes` generated nodes (8 H100 each, 32 to a rack, 8 racks to a block; the
one stand-in here: nothing can run 1,000 real nodes on this machine, so the executor only
reports them). No reconciler runs, so the store stays as inserted.

Headless Chromium (Debian's, through Selenium and Debian's chromedriver, as the browser tests
use it) logs in with the admin token, then loads each page `--loads` times. For each load the
browser's Navigation Timing gives `main_ms` (navigation start to DOMContentLoaded: the page's
HTML, with its <main> element, is parsed) and `load_ms` (to the load event: style sheet and
scripts too); the server's own answer time is measured beside it with a plain HTTP client.
Target: p95 of `main_ms` < 1000 for every page. stdout gets one JSON object.

    .venv/bin/python bench/dashboard_load.py [--jobs 10000] [--nodes 1000] [--loads 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/browser.py: the browser the tests drive
TARGET_P95_MS = 1000.0
RUNNING = (
    "apiVersion: suan.ai/v1\nkind: Job\nmetadata: {name: train}\nspec:\n"
    "  replicas: 2\n  accelerators: {count: 4, type: H100}\n  command: [sleep, '3600']\n"
)
REASONS = ("capacity", "shape", "quota", "constraint", "health")
USERS = ("alice", "bob", "carol", "dave")


def say(*words: object) -> None:
    print(*words, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReportOnly:
    """An executor that reports a generated cluster and runs nothing (no reconciler runs)."""

    engine = "generated"

    def __init__(self, nodes: int):
        from suan.cluster.generate import generate_cluster

        self.nodes = tuple(generate_cluster(nodes))

    def inventory(self) -> tuple[Any, ...]:
        return self.nodes

    def logs(self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20):
        line = f"rank {rank} of {job_id}: step 1\n".encode()
        return (line, offset + len(line)) if offset == 0 else (b"", offset)


def job_rows(count: int, nodes: tuple[Any, ...], home: Path) -> list[dict[str, Any]]:
    """`count` jobs as the API stores them: 1/4 running (2 replicas of 4 devices, packed two
    jobs to a node while nodes last), 1/2 pending, the rest succeeded or failed."""
    from suan.control.lifecycle import JobState
    from suan.control.submit import raw_documents

    document = json.dumps(raw_documents(RUNNING)[0])
    now = time.time()
    rows, slot = [], 0
    for index in range(count):
        job_id = f"train-{index:05d}-{secrets.token_hex(2)}"
        kind = index % 4
        state, placement, reason, code = JobState.PENDING.value, None, "", ""
        if kind == 0 and slot + 1 < len(nodes) * 2:
            state = JobState.RUNNING.value
            placement = json.dumps({"replicas": [
                {"group": 0, "node": nodes[(slot + r) // 2].name,
                 "devices": list(range(4 * ((slot + r) % 2), 4 * ((slot + r) % 2) + 4))}
                for r in range(2)]})
            slot += 2
        elif kind == 3:
            state = (JobState.SUCCEEDED if index % 8 == 3 else JobState.FAILED).value
        else:
            code = REASONS[index % len(REASONS)]
            reason = f"waiting ({code}): 16 H100 in 2 replicas"
        ended = state in (JobState.SUCCEEDED.value, JobState.FAILED.value)
        rows.append(dict(
            id=job_id, name="train", user=USERS[index % len(USERS)], queue="default",
            state=state, document=document, placement=placement,
            checkpoint_dir=str(home / "jobs" / job_id / "checkpoints"), workdir="",
            submit_time=now - count + index, start_time=now - 60 if placement else None,
            end_time=now - 1 if ended else None, exit_code=(1 if state == "failed" else 0)
            if ended else None, attempt=1 if placement or ended else 0, restarts=0,
            reason=reason, reason_code=code, cancel_requested=False, stop_reason=""))
    return rows


def fill_store(home: Path, jobs: int, nodes: tuple[Any, ...]) -> str:
    """The store under `home` with `jobs` jobs and their events; a running job's id."""
    from sqlalchemy import insert

    from suan.control.models import EventRow, JobRow
    from suan.control.store import Store, database_url

    rows = job_rows(jobs, nodes, home)
    store = Store.open(database_url(home))
    try:
        with store.session() as session:
            for start in range(0, len(rows), 5000):
                batch = rows[start:start + 5000]
                session.execute(insert(JobRow), batch)
                session.execute(insert(EventRow), [
                    dict(job_id=r["id"], time=r["submit_time"], kind="submitted",
                         message=f"submitted by {r['user']} to queue default") for r in batch])
    finally:
        store.close()
    return next(r["id"] for r in rows if r["placement"])


def serve(home: Path, port: int, nodes: int) -> None:
    """Run the API and dashboard over the filled store (the `--serve` child process)."""
    import uvicorn

    from suan.control.api import Services, create_app
    from suan.control.auth import create_user
    from suan.control.config import ControlConfig
    from suan.control.inventory import ClusterInventory
    from suan.control.store import Store, database_url

    executor = ReportOnly(nodes)
    store = Store.open(database_url(home))
    with store.session() as session:
        (home / "admin-token").write_text(create_user(session, "admin", admin=True))
    config = ControlConfig(home=home, simulated=True)
    services = Services(store, executor, config, ClusterInventory(executor, 3600.0))  # type: ignore[arg-type]
    uvicorn.run(create_app(services), host="127.0.0.1", port=port, log_level="warning")


def start_server(home: Path, nodes: int) -> tuple[subprocess.Popen[bytes], str, str]:
    import httpx

    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(home), str(port),
                              str(nodes)], stderr=open(home / "server.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError((home / "server.log").read_text()[-3000:])
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return child, url, (home / "admin-token").read_text().strip()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def load_page(driver: Any, url: str) -> dict[str, float]:
    from selenium.webdriver.common.by import By

    driver.get(url)
    driver.find_element(By.CSS_SELECTOR, "main[data-page]")
    timing = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return [n.responseStart, n.domContentLoadedEventEnd, n.loadEventEnd, n.transferSize]")
    return {"response_ms": timing[0], "main_ms": timing[1], "load_ms": timing[2],
            "bytes": timing[3]}


def measure(driver: Any, url: str, session: dict[str, str], loads: int) -> dict[str, Any]:
    import httpx

    browser = [load_page(driver, url) for _ in range(loads)]
    server_ms = []
    with httpx.Client(cookies=session) as client:
        for _ in range(loads):
            began = time.perf_counter()
            assert client.get(url).status_code == 200
            server_ms.append((time.perf_counter() - began) * 1000)
    main = [b["main_ms"] for b in browser]
    return {
        "main_ms_p50": percentile(main, 50), "main_ms_p95": percentile(main, 95),
        "main_ms_max": max(main),
        "load_ms_p95": percentile([b["load_ms"] for b in browser], 95),
        "server_ms_p50": percentile(server_ms, 50), "server_ms_p95": percentile(server_ms, 95),
        "html_bytes": int(browser[-1]["bytes"]),
        "meets_target": percentile(main, 95) < TARGET_P95_MS,
    }


def log_in(driver: Any, url: str, token: str) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    driver.get(url + "/ui/login")
    driver.find_element(By.ID, "token").send_keys(token)
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "login").click()
    try:
        WebDriverWait(driver, 60).until(shown.presence_of_element_located((By.ID, "who")))
    except Exception:
        raise RuntimeError(f"login failed: {driver.page_source[:2000]}") from None
    return {"suan_session": driver.get_cookie("suan_session")["value"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from browser import start_browser

    home = Path(tempfile.mkdtemp(prefix="suan-dashboard-bench-"))
    began = time.perf_counter()
    running = fill_store(home, args.jobs, ReportOnly(args.nodes).nodes)
    say(f"store: {args.jobs} jobs in {time.perf_counter() - began:.1f}s")
    child, url, token = start_server(home, args.nodes)
    driver = start_browser()
    if isinstance(driver, str):
        raise SystemExit(f"no browser: {driver}")
    try:
        session = log_in(driver, url, token)
        pages = {"cluster": "/ui/cluster", "queues": "/ui/queues", "jobs": "/ui/jobs",
                 "jobs_filtered": "/ui/jobs?state=pending&reason=quota",
                 "job": f"/ui/jobs/{running}", "simulator": "/ui/sim"}
        results = {}
        for name, path in pages.items():
            results[name] = measure(driver, url + path, session, args.loads)
            say(f"{name}: {results[name]}")
    finally:
        driver.quit()
        child.terminate()
        child.wait(10)
    return results


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    pages = run(args)
    print(json.dumps({
        "benchmark": "dashboard_load", "jobs": args.jobs, "nodes": args.nodes,
        "loads": args.loads, "cpus": os.cpu_count(), "python": platform.python_version(),
        "target_main_ms_p95": TARGET_P95_MS, "pages": pages,
        "all_meet_target": all(p["meets_target"] for p in pages.values()),
    }, indent=2))


if __name__ == "__main__":
    main()
