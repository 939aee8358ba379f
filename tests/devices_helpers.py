"""Shared pieces of the device-health tests: the captured fixtures, named edits of them that
make a GPU faulty, and real executable tools on a PATH of the test's own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "devices"
A10G = FIXTURES / "nvidia" / "a10g.xml"
A100 = FIXTURES / "nvidia" / "a100-sxm4-v12.xml"
T4 = FIXTURES / "nvidia" / "tesla-t4.xml"
RX6600 = FIXTURES / "amd" / "rx6600-metric.json"

VOLATILE_DRAM_UNCORRECTABLE = (
    "<dram_correctable>0</dram_correctable>\n"
    "                <dram_uncorrectable>0</dram_uncorrectable>\n"
    "            </volatile>"
)


def a10g_with(**edits: str) -> str:
    """The captured A10G report with named values changed: `ecc_uncorrectable` (volatile DRAM
    uncorrectable count), `remap_pending`, `hw_slowdown`, `temperature` (gpu_temp, "96 C")."""
    text = A10G.read_text()
    replacements = {
        "ecc_uncorrectable": (
            VOLATILE_DRAM_UNCORRECTABLE,
            VOLATILE_DRAM_UNCORRECTABLE.replace(
                ">0</dram_uncorrectable>", ">{}</dram_uncorrectable>"
            ),
        ),
        "remap_pending": (
            "<remapped_row_pending>No</remapped_row_pending>",
            "<remapped_row_pending>{}</remapped_row_pending>",
        ),
        "hw_slowdown": (
            "<clocks_throttle_reason_hw_slowdown>Not Active</clocks_throttle_reason_hw_slowdown>",
            "<clocks_throttle_reason_hw_slowdown>{}</clocks_throttle_reason_hw_slowdown>",
        ),
        "temperature": ("<gpu_temp>17 C</gpu_temp>", "<gpu_temp>{}</gpu_temp>"),
    }
    for name, value in edits.items():
        old, new = replacements[name]
        assert text.count(old) == 1, f"the A10G capture changed: {name}"
        text = text.replace(old, new.format(value))
    return text


def tool(bin_dir: Path, name: str, script: str) -> Path:
    """An executable shell script `bin_dir/name` running `script`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def printing(bin_dir: Path, name: str, text: str) -> Path:
    """A tool `name` that prints `text` (kept in a file beside it) and exits 0."""
    data = bin_dir / f"{name}.out"
    bin_dir.mkdir(parents=True, exist_ok=True)
    data.write_text(text)
    return tool(bin_dir, name, f'cat "{data}"')


def path_env(bin_dir: Path) -> dict[str, str]:
    """The environment with `bin_dir` first on PATH."""
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
