"""Recovery: how fast a lost or hung rank is noticed and its gang runs again, per engine.

For each engine it starts what it needs itself, as bench/engine_overhead.py does (nothing for
`local`; a local Slurm or Ray cluster through scripts/local-cluster.sh with its own directory,
ports and network namespace) and a real `suan server` with its default timings (`--tick 0.25`,
`--restart-backoff 2`, `--stop-grace 10`; each a flag here), driven through the Python SDK.
Each trial runs a 2-rank gang of examples/progress/train_loop.py (steps of 0.1 s, a progress
line a step; ranks spread over two nodes where the engine has them) in which rank 1, at step
10 of its first attempt, writes the time to its checkpoint directory and then

- `killed`: SIGKILLs itself. `detect_s` = the `rank-failed` event - that time;
- `stopped`: SIGSTOPs itself, with `spec.health.noProgressTimeout` set (`--timeout`, 5 s).
  `detect_s` = the `hang` event - that time (at least the timeout; `over_timeout_s` is the
  rest: the progress reader's 1 s grain, the reconciler's tick, the last step's length);

and `rerun_s` = the job's next `running` event (the engine took every rank of the new
attempt) - the detection event: stopping the other ranks, the restart backoff, scheduling and
launching; `resumed_s` = the moment every rank of the new attempt has printed its first
progress line (the line's own time) - the detection event: the gang training again.
Times are the server's event stamps and the rank's clock, on one machine. `reader_pass` is the
CPU time of one pass of the progress reader over 100 jobs of 8 ranks, each rank having printed
10 progress lines and 10 other lines since the last pass (SQLite store; least of 5 passes).
Prints JSON: per engine and fault, the trials' values and their median, and whether the
targets are met (a killed rank detected < 10 s, a stopped one within the timeout plus 2 s,
the gang training again, `resumed_s`, < 30 s). A trial's job is cancelled once measured (its
600 steps would take a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine_overhead import STARTERS, Server, say, slurm_version, version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's suan, here and in the server it starts
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
LOOP = ROOT / "examples" / "progress" / "train_loop.py"
ENGINES = ("local", "slurm", "ray")
FAULTS = {"killed": ("kill", "rank-failed"), "stopped": ("stop", "hang")}
ATTEMPT = re.compile(r"^--- suan: attempt (\d+), ", re.MULTILINE)
TARGETS = {"killed_detect_s": 10.0, "stopped_detect_over_timeout_s": 2.0, "rerun_s": 30.0}


def fault_job(name: str, fault: str, timeout_s: float, spread: bool) -> str:
    env = {"STEPS": "600", "STEP_S": "0.1", "FAULT": fault, "FAULT_RANK": "1", "FAULT_AT": "10",
           "PYTHONPATH": str(ROOT)}
    lines = [
        "apiVersion: suan.ai/v1", "kind: Job", f"metadata: {{name: {name}}}", "spec:",
        "  replicas: 2", "  accelerators: {count: 1, type: H100}",
        f"  command: {json.dumps([sys.executable, str(LOOP)])}", f"  env: {json.dumps(env)}",
        "  maxRestarts: 2",
    ]
    if spread:
        lines.append("  topology: {placement: spread}")
    if fault == "stop":
        lines.append(f"  health: {{noProgressTimeout: {timeout_s:g}s}}")
    return "\n".join(lines) + "\n"


def trial(server: Server, name: str, fault: str, args: argparse.Namespace) -> dict[str, float]:
    """One faulted run: detect_s and rerun_s (see the module doc)."""
    kind, detected_by = FAULTS[fault]
    spec = fault_job(f"{fault}-{name}", kind, args.timeout, spread=name != "local")
    job_id = server.submit(spec, ROOT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = server.client.describe(job_id)
        events = job["events"]
        detection = next((e["time"] for e in events if e["kind"] == detected_by), None)
        rerun = [e["time"] for e in events if e["kind"] == "running"][1:]
        resumed = first_steps(server, job_id, attempt=2) if rerun else None
        if detection is not None and rerun and resumed is not None:
            fault_at = float((Path(job["checkpoint_dir"]) / "fault").read_text())
            server.finish(job_id, timeout=60)
            return {"detect_s": detection - fault_at, "rerun_s": rerun[0] - detection,
                    "resumed_s": resumed - detection}
        if job["state"] in ("succeeded", "failed", "cancelled"):
            raise RuntimeError(f"job {job_id} ended {job['state']} without a rerun: {events}")
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not run again within 180 s")


def first_steps(server: Server, job_id: str, attempt: int, ranks: int = 2) -> float | None:
    """When the last of the ranks printed its first progress line of `attempt` (its time);
    None until every rank has."""
    from suan.progress import MARK

    times = []
    for rank in range(ranks):
        text = server.client.logs(job_id, rank=rank)["data"]
        starts = [m for m in ATTEMPT.finditer(text) if int(m.group(1)) == attempt]
        lines = text[starts[0].end():].splitlines() if starts else []
        stamp = next((json.loads(line)["time"] for line in lines
                      if line.startswith("{") and f'"{MARK}"' in line), None)
        if stamp is None:
            return None
        times.append(stamp)
    return max(times)


def reader_cost(jobs: int, ranks: int, lines: int, repeats: int = 5) -> dict[str, Any]:
    """CPU seconds of one progress-reader pass (read, parse, store, commit) over `jobs` jobs of
    `ranks` ranks that each printed `lines` new progress lines and as many other lines since
    the last pass: the least of `repeats` passes (time.process_time)."""
    from suan.control.auth import Identity
    from suan.control.progress_reader import READ_EVERY_S, ProgressReader
    from suan.control.store import Store, database_url
    from suan.control.submit import submit
    from suan.exec.files import JobFiles
    from suan.exec.local import LocalExecutor
    from suan.exec.local_node import local_node
    from suan.progress import Progress, line

    home = Path(tempfile.mkdtemp(prefix="suan-reader-"))
    try:
        store = Store.open(database_url(home))
        spec = "".join(
            f"---\napiVersion: suan.ai/v1\nkind: Job\nmetadata: {{name: r{n}}}\nspec:\n"
            f"  replicas: {ranks}\n  command: [x]\n" for n in range(jobs))
        with store.session() as session:
            ids = [j["id"] for j in submit(session, Identity("admin", admin=True), spec, None,
                                           home).jobs]
        node, _ = local_node("8xH100")
        reader, files = ProgressReader(LocalExecutor(home, node=node)), JobFiles(home)
        files.log_path(ids[0], 0).parent.mkdir(parents=True, exist_ok=True)
        best, step, now = float("inf"), 0, 0.0
        for _ in range(repeats):
            for job_id in ids:
                files.log_path(job_id, 0).parent.mkdir(parents=True, exist_ok=True)
                for rank in range(ranks):
                    text = "".join(
                        f"step {step + k} loss 1.0\n"
                        + line(Progress(step + k + 1, 4096 * (step + k + 1), 0.5)) + "\n"
                        for k in range(lines))
                    with open(files.log_path(job_id, rank), "a") as handle:
                        handle.write(text)
            step, now = step + lines, now + READ_EVERY_S
            began = time.process_time()
            with store.session() as session:
                reader.read(session, [(job_id, 1, ranks) for job_id in ids], now)
            best = min(best, time.process_time() - began)
        store.close()
        return {"jobs": jobs, "ranks": jobs * ranks, "new_progress_lines_per_rank": lines,
                "pass_cpu_s": round(best, 4)}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def summary(values: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(values), 3),
            "values_s": [round(v, 3) for v in values]}


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        engine = STARTERS[name](stack)
        work = Path(tempfile.mkdtemp(prefix=f"suan-recovery-{name}-"))
        stack.callback(shutil.rmtree, work, True)
        server = Server(work / "home", engine, args)
        stack.callback(server.stop)
        server.start()
        entry: dict[str, Any] = {}
        for fault in FAULTS:
            runs = []
            for number in range(args.trials):
                runs.append(trial(server, name, fault, args))
                say(f"{name}: {fault} trial {number + 1}/{args.trials}: {runs[-1]}")
            entry[fault] = {key: summary([run[key] for run in runs])
                            for key in ("detect_s", "rerun_s", "resumed_s")}
        entry["stopped"]["over_timeout_s"] = round(
            entry["stopped"]["detect_s"]["median_s"] - args.timeout, 3)
        entry["targets_met"] = {
            "killed_detect": entry["killed"]["detect_s"]["median_s"] < TARGETS["killed_detect_s"],
            "stopped_detect": entry["stopped"]["over_timeout_s"]
            < TARGETS["stopped_detect_over_timeout_s"],
            "rerun": max(entry[f]["resumed_s"]["median_s"] for f in FAULTS) < TARGETS["rerun_s"],
        }
        if "cluster_start_s" in engine.info:
            entry["cluster_start_s"] = engine.info["cluster_start_s"]
        return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma list of engines")
    parser.add_argument("--trials", type=int, default=3, help="trials per engine and fault")
    parser.add_argument("--timeout", type=float, default=5.0, help="noProgressTimeout, seconds")
    parser.add_argument("--tick", type=float, default=0.25, help="server --tick (its default)")
    parser.add_argument("--restart-backoff", type=float, default=2.0, help="(its default)")
    parser.add_argument("--stop-grace", type=float, default=10.0, help="(its default)")
    parser.add_argument("--reader-jobs", type=int, default=100,
                        help="jobs of 8 ranks in the reader-cost pass (0: skip it)")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}; choose from {','.join(ENGINES)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report: dict[str, Any] = {
        "benchmark": "recovery",
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "versions": {"slurm": slurm_version(), "ray": version("ray"),
                     "python": platform.python_version()},
        "targets": {"killed_detect_s": "< 10", "stopped_detect_s": "< timeout + 2",
                    "resumed_s": "< 30"},
        "settings": {"ranks": 2, "fault_rank": 1, "fault_at_step": 10, "step_s": 0.1,
                     "trials": args.trials, "no_progress_timeout_s": args.timeout,
                     "server_tick_s": args.tick, "restart_backoff_s": args.restart_backoff,
                     "stop_grace_s": args.stop_grace},
    }
    if args.reader_jobs:
        report["reader_pass"] = reader_cost(args.reader_jobs, 8, 10)
        say(f"reader: {report['reader_pass']}")
    for name in engines:
        say(f"== {name} ==")
        try:
            report[name] = measure(name, args)
        except Exception as exc:  # one engine failing should not hide the others
            say(f"{name}: FAILED: {exc}")
            report[name] = {"error": str(exc)[-2000:]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
