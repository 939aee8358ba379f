"""Benchmark: what one device-health reading costs; print JSON.

    python bench/device_health.py [--repeats 50] [--gpus 8]

Two parts, each the minimum over `--repeats` runs:
- parse + judge (CPU seconds) of the captured nvidia-smi reports, one GPU each as captured
  and an 8-GPU report made by repeating the captured <gpu> element (the size of an HGX node),
  and of the captured amd-smi report;
- one whole reading through the runner (wall seconds): a real process on PATH that prints the
  8-GPU report, started, read, parsed and judged, as the watch does every `periodSeconds`.
The budget, 1 s of one CPU per reading, is what a once-a-minute reading may cost (under 2 %
of a core); the watch's default period (60 s) rests on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import stat
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "devices"
BUDGET_CPU_S = 1.0


def gpus_report(text: str, gpus: int) -> str:
    """The captured one-GPU report with its <gpu> element repeated `gpus` times."""
    start, end = text.index("<gpu "), text.rindex("</gpu>") + len("</gpu>")
    return text[:start] + "\n".join([text[start:end]] * gpus) + text[end:]


def cpu_min(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        cpu = time.process_time()
        work()
        times.append(time.process_time() - cpu)
    return min(times)


def wall_min(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        wall = time.perf_counter()
        work()
        times.append(time.perf_counter() - wall)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--gpus", type=int, default=8)
    args = parser.parse_args()

    from suan.devices import amd, nvidia
    from suan.devices.model import ToolReport
    from suan.devices.runner import run_tool
    from suan.devices.severity import default_severity_table, judge

    table = default_severity_table()
    a10g = (FIXTURES / "nvidia" / "a10g.xml").read_text()
    inputs = {
        "nvidia a100-sxm4-v12 (1 GPU)": (
            nvidia,
            "nvidia",
            (FIXTURES / "nvidia" / "a100-sxm4-v12.xml").read_text(),
        ),
        "nvidia a10g (1 GPU)": (nvidia, "nvidia", a10g),
        f"nvidia a10g x{args.gpus} GPUs": (nvidia, "nvidia", gpus_report(a10g, args.gpus)),
        "amd rx6600 (1 GPU)": (amd, "amd", (FIXTURES / "amd" / "rx6600-metric.json").read_text()),
    }
    parse_judge = {}
    for name, (module, vendor, text) in inputs.items():

        def work(module=module, vendor=vendor, text=text):
            judge(ToolReport(vendor, "x", tuple(module.parse(text))), table)

        parse_judge[name] = round(cpu_min(work, args.repeats) * 1000, 3)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "report.xml"
        data.write_text(gpus_report(a10g, args.gpus))
        script = Path(tmp) / "nvidia-smi"
        script.write_text(f'#!/bin/sh\ncat "{data}"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        env = {**os.environ, "PATH": f"{tmp}{os.pathsep}{os.environ.get('PATH', '')}"}

        def reading():
            report = run_tool("nvidia", ("nvidia-smi", "-q", "-x"), nvidia.parse, 5, env)
            assert len(report.devices) == args.gpus, report.unknown
            judge(report, table, args.gpus)

        reading_wall = wall_min(reading, args.repeats)
        reading_cpu = cpu_min(reading, args.repeats)

    print(
        json.dumps(
            {
                "benchmark": "device_health",
                "python": platform.python_version(),
                "repeats": args.repeats,
                "parse_and_judge_cpu_ms_min": parse_judge,
                "reading_through_a_real_tool": {
                    "gpus": args.gpus,
                    "wall_ms_min": round(reading_wall * 1000, 3),
                    "server_cpu_ms_min": round(reading_cpu * 1000, 3),
                },
                "budget_cpu_s_per_reading": BUDGET_CPU_S,
                "within_budget": reading_cpu < BUDGET_CPU_S,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
