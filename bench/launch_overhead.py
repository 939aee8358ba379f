"""Launch overhead of the control plane: from `submit` returning to every rank executing.

Starts a real `suan server` (8 simulated H100 slots, SQLite, 127.0.0.1) in a temporary home,
then for each gang size submits `--trials` jobs one after another. Each rank writes the wall
time at which its Python code began; the job is timed from just before the HTTP submit to the
last rank's start. Also timed, as baselines for the same ranks: spawning the processes directly
(`subprocess`, the floor) and `torchrun --nproc-per-node N` (when torch is installed).

Prints one JSON object: per gang size, p50/max seconds of submit->all ranks executing,
submit->`running` state (the server's own event times), and the baselines.

With `--burst N` it submits N two-rank jobs (`true`) back to back and reports the submit
latency and the time until all of them have succeeded (jobs per second through the whole
lifecycle on 8 slots).

With `--throughput STEPS` (and torch installed) it also trains the GPT example
(examples/gpt/train.py, 4 ranks, DDP over gloo) for STEPS steps under Suan and under
`torchrun --standalone`, and reports both runs' training tokens/s and end-to-end wall time.

    python bench/launch_overhead.py [--ranks 1 4 8] [--trials 5] [--burst 150] [--throughput 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RANK_CODE = (
    "import os, time, pathlib; pathlib.Path(os.environ['BENCH_OUT'], "
    "'start-' + os.environ['RANK']).write_text(repr(time.time()))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    from suan.client import Client

    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "suan.cli.main",
        "server",
        "--home",
        str(home),
        "--port",
        str(port),
        "--devices",
        "8xH100",
    ]
    log = open(home / "server.log", "ab")  # noqa: SIM115 - lives with the server
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not ((home / "admin-token").exists() and Client(url, token="").healthy()):
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"server did not start; see {home / 'server.log'}")
        time.sleep(0.1)
    return process, url


def job_spec(name: str, ranks: int, out: Path) -> str:
    return (
        f"apiVersion: suan.ai/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n"
        f"  replicas: {ranks}\n  accelerators: {{count: 1, type: H100}}\n"
        f"  command: [{json.dumps(sys.executable)}, -c, {json.dumps(RANK_CODE)}]\n"
        f"  env: {{BENCH_OUT: {json.dumps(str(out))}}}\n"
    )


def last_rank_start(out: Path, ranks: int, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(out.glob("start-*"))
        if len(files) == ranks:
            try:
                return max(float(f.read_text()) for f in files)
            except ValueError:
                pass  # a rank is mid-write
        time.sleep(0.005)
    raise SystemExit(f"only {len(list(out.glob('start-*')))} of {ranks} ranks started")


def time_suan(client, ranks: int, work: Path, trial: int) -> tuple[float, float]:
    out = work / f"suan-{ranks}-{trial}"
    out.mkdir()
    spec = job_spec(f"bench-{ranks}-{trial}", ranks, out)
    began = time.time()
    [job_id] = client.submit(spec)
    executing = last_rank_start(out, ranks) - began
    job = client.wait(job_id, timeout=60, poll_s=0.05)
    times = {e["kind"]: e["time"] for e in job["events"]}
    return executing, times["running"] - times["submitted"]


def time_direct(ranks: int, work: Path, trial: int) -> float:
    out = work / f"direct-{ranks}-{trial}"
    out.mkdir()
    began = time.time()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RANK_CODE], env=dict(os.environ, RANK=str(r), BENCH_OUT=str(out))
        )
        for r in range(ranks)
    ]
    executing = last_rank_start(out, ranks) - began
    for process in processes:
        process.wait()
    return executing


def time_torchrun(ranks: int, work: Path, trial: int) -> float | None:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        return None
    out = work / f"torchrun-{ranks}-{trial}"
    out.mkdir()
    script = work / "rank.py"
    script.write_text(RANK_CODE + "\n")
    began = time.time()
    process = subprocess.Popen(
        [torchrun, "--standalone", f"--nproc-per-node={ranks}", str(script)],
        env=dict(os.environ, BENCH_OUT=str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    executing = last_rank_start(out, ranks) - began
    process.wait()
    return executing


def burst(client, jobs: int) -> dict[str, float]:
    """Submit `jobs` two-rank jobs at once; submit latency and time until all succeeded."""
    spec = (
        "apiVersion: suan.ai/v1\nkind: Job\nmetadata: {name: burst}\nspec:\n"
        "  replicas: 2\n  accelerators: {count: 1, type: H100}\n  command: ['true']\n"
    )
    began = time.time()
    latencies, ids = [], []
    for _ in range(jobs):
        sent = time.perf_counter()
        ids += client.submit(spec)
        latencies.append(time.perf_counter() - sent)
    while True:
        states = [job["state"] for job in client.jobs(all=True) if job["id"] in set(ids)]
        if all(state in ("succeeded", "failed", "cancelled") for state in states):
            break
        time.sleep(0.2)
    elapsed = time.time() - began
    return {
        "jobs": jobs,
        "submit_p50_s": round(statistics.median(latencies), 4),
        "submit_max_s": round(max(latencies), 4),
        "all_done_s": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 2),
        "succeeded": sum(state == "succeeded" for state in states),
    }


GPT = Path(__file__).resolve().parents[1] / "examples" / "gpt" / "train.py"


def tokens_per_s(log: str) -> float:
    """The tokens/s of the last step line the GPT example printed."""
    rates = [line.split("tokens/s")[1] for line in log.splitlines() if "tokens/s" in line]
    return float(rates[-1].replace(",", "")) if rates else float("nan")


def throughput(client, steps: int, work: Path) -> dict[str, float]:
    """The GPT example on 4 ranks under Suan and under torchrun: tokens/s and wall time."""
    args = ["--steps", str(steps), "--checkpoint-every", str(steps)]
    spec = (
        f"apiVersion: suan.ai/v1\nkind: Job\nmetadata: {{name: gpt-bench}}\nspec:\n"
        f"  replicas: 4\n  accelerators: {{count: 1, type: H100}}\n"
        f"  command: {json.dumps([sys.executable, str(GPT), *args])}\n"
        f"  env: {{OMP_NUM_THREADS: '1'}}\n"
    )
    began = time.time()
    [job_id] = client.submit(spec)
    job = client.wait(job_id, timeout=600, poll_s=1.0)
    suan_wall = time.time() - began
    suan_rate = tokens_per_s(client.logs(job_id, rank=0)["data"])
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    began = time.time()
    out = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node=4", str(GPT), *args],
        capture_output=True,
        text=True,
        cwd=work,
        env=dict(os.environ, OMP_NUM_THREADS="1", SUAN_CHECKPOINT_DIR=str(work / "torchrun-ckpt")),
    )
    torchrun_wall = time.time() - began
    return {
        "steps": steps,
        "suan_state": job["state"],
        "suan_tokens_per_s": suan_rate,
        "torchrun_tokens_per_s": tokens_per_s(out.stdout),
        "suan_wall_s": round(suan_wall, 2),
        "torchrun_wall_s": round(torchrun_wall, 2),
    }


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_s": round(statistics.median(values), 4), "max_s": round(max(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument(
        "--burst", type=int, default=0, metavar="N", help="also submit N two-rank jobs at once"
    )
    parser.add_argument(
        "--throughput",
        type=int,
        default=0,
        metavar="STEPS",
        help="also train the GPT example for STEPS steps (needs torch)",
    )
    args = parser.parse_args()
    from suan.client import Client

    work = Path(tempfile.mkdtemp(prefix="suan-bench-"))
    home = work / "home"
    home.mkdir()
    server, url = start_server(home)
    results = []
    try:
        client = Client(url, token=(home / "admin-token").read_text().strip())
        for ranks in args.ranks:
            suan = [time_suan(client, ranks, work, t) for t in range(args.trials)]
            direct = [time_direct(ranks, work, t) for t in range(args.trials)]
            torchrun = [time_torchrun(ranks, work, t) for t in range(args.trials)]
            entry = {
                "ranks": ranks,
                "suan_submit_to_all_ranks_executing": summary([s[0] for s in suan]),
                "suan_submit_to_running_state": summary([s[1] for s in suan]),
                "direct_spawn_to_all_ranks_executing": summary(direct),
            }
            if all(t is not None for t in torchrun):
                entry["torchrun_to_all_ranks_executing"] = summary(torchrun)  # type: ignore
            results.append(entry)
        burst_report = burst(client, args.burst) if args.burst else None
        trained = throughput(client, args.throughput, work) if args.throughput else None
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "benchmark": "launch_overhead",
        "trials": args.trials,
        "cpus": os.cpu_count(),
        "store": "sqlite",
        "results": results,
    }
    if burst_report is not None:
        report["burst"] = burst_report
    if trained is not None:
        report["gpt_throughput"] = trained
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
