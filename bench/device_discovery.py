"""Benchmark: what device discovery and `suan devices check` cost; print JSON.

    python bench/device_discovery.py [--repeats 10] [--gpus 8] [--hung-timeout 1]

Each figure is the minimum over `--repeats` runs, with real tool processes on a PATH of the
benchmark's own (the captured A100 nvidia-smi report with its <gpu> element repeated `--gpus`
times, the size of an HGX node):
- `discover()` in this process: wall and CPU seconds;
- `discover()` with two more tools that hang: wall seconds, which must stay near one tool
  timeout (`--hung-timeout`) however many tools hang, since they run at the same time;
- `suan devices check` as Slurm's HealthCheckProgram runs it: a new process (interpreter
  start, imports, discovery, verdict), wall seconds. Slurm kills the program after 60 s
  (slurm.conf(5)); the budget here is that limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "devices"
SLURM_LIMIT_S = 60.0


def gpus_report(text: str, gpus: int) -> str:
    """The captured one-GPU report with its <gpu> element repeated `gpus` times."""
    start, end = text.index("<gpu "), text.rindex("</gpu>") + len("</gpu>")
    return text[:start] + "\n".join([text[start:end]] * gpus) + text[end:]


def script(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def timed(work, repeats: int) -> tuple[float, float]:
    """(minimum wall seconds, minimum CPU seconds of this process) over `repeats` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--hung-timeout", type=float, default=1.0)
    args = parser.parse_args()

    from suan.devices.discover import discover

    a100 = (FIXTURES / "nvidia" / "a100-sxm4-v12.xml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        tools, hung = Path(tmp) / "tools", Path(tmp) / "hung"
        tools.mkdir()
        hung.mkdir()
        (tools / "report.xml").write_text(gpus_report(a100, args.gpus))
        script(tools, "nvidia-smi", f'cat "{tools / "report.xml"}"')
        for name in ("cnmon", "xpu-smi"):
            script(hung, name, "sleep 60")
        system = os.environ.get("PATH", "")
        env = {**os.environ, "PATH": f"{tools}{os.pathsep}{system}"}
        env_hung = {**os.environ, "PATH": f"{tools}{os.pathsep}{hung}{os.pathsep}{system}"}

        def one_tool() -> None:
            (found,) = [d for d in discover(env=env) if d.tool == "nvidia-smi"]
            assert (found.accelerator, found.count) == ("A100-80GB", args.gpus), found.problem

        def with_hung_tools() -> None:
            found = discover(timeout_s=args.hung_timeout, env=env_hung)
            assert sum(1 for d in found if "no answer" in d.report.unknown) == 2

        def check_command() -> None:
            done = subprocess.run(
                [sys.executable, "-m", "suan.cli.main", "devices", "check"],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=SLURM_LIMIT_S,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr

        discover_wall, discover_cpu = timed(one_tool, args.repeats)
        hung_wall, _ = timed(with_hung_tools, max(1, args.repeats // 5))
        check_wall, _ = timed(check_command, args.repeats)

    print(
        json.dumps(
            {
                "benchmark": "device_discovery",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "repeats": args.repeats,
                "gpus": args.gpus,
                "discover_one_tool": {
                    "wall_ms_min": round(discover_wall * 1000, 1),
                    "cpu_ms_min": round(discover_cpu * 1000, 1),
                },
                "discover_with_two_hung_tools": {
                    "timeout_s": args.hung_timeout,
                    "wall_s_min": round(hung_wall, 3),
                },
                "suan_devices_check_process_wall_s_min": round(check_wall, 3),
                "slurm_health_check_limit_s": SLURM_LIMIT_S,
                "within_limit": check_wall < SLURM_LIMIT_S,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
