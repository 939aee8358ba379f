"""`suan devices` and `suan devices check` as a user runs them: real `suan` processes with
fake vendor tools (printing captured outputs) on a PATH of the test's own; no server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from devices_helpers import a10g_with, printing, tool
from hypothesis import given, settings
from hypothesis import strategies as st
from test_devices_discover import ASCEND_910B2C, isolated_path

from suan.devices.model import Severity
from suan.devices.slurm_drain import REASON_BYTES, severity_in_reason, slurm_reason

ECC_LINE = "drain: device 0 (NVIDIA A10G) ecc_uncorrectable: volatile uncorrectable ECC errors: 2"


def suan(*args: str, bin_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, **isolated_path(bin_dir), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "suan.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_devices_json_lists_each_tool_its_devices_signals_and_the_node_verdict(tmp_path):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    printing(bin_dir, "npu-smi", ASCEND_910B2C.read_text())
    done = suan("devices", "--json", bin_dir=bin_dir)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["verdict"] == {
        "severity": "drain",
        "unknown": "",
        "reason": ECC_LINE,
        "line": ECC_LINE,
        "exit_code": 1,
    }
    tools = {entry["tool"]: entry for entry in shown["tools"]}
    ascend = tools["npu-smi"]
    assert (ascend["vendor"], ascend["accelerator"]) == ("huawei", "Ascend-910B")
    assert ascend["count"] == 2
    assert [d["type"] for d in ascend["devices"]] == ["Ascend-910B", "Ascend-910B"]
    assert ascend["devices"][0]["memory_mib"] == 65536
    assert ascend["verdict"]["severity"] == "ok"
    nvidia = tools["nvidia-smi"]
    assert nvidia["accelerator"] is None and "'NVIDIA A10G' not in" in nvidia["problem"]
    assert nvidia["verdict"]["unhealthy_devices"] == [0]
    signals = {s["name"]: s for s in nvidia["devices"][0]["signals"]}
    assert signals["ecc_uncorrectable"]["severity"] == "drain"
    assert signals["ecc_uncorrectable"]["value"] == 2 and signals["ecc_uncorrectable"]["why"]
    assert signals["ecc_correctable"]["severity"] == "ok"


def test_devices_table_shows_types_memory_signals_and_the_verdict(tmp_path):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    printing(bin_dir, "npu-smi", ASCEND_910B2C.read_text())
    done = suan("devices", bin_dir=bin_dir)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split("\t")[:5] == ["TOOL", "INDEX", "MODEL", "TYPE", "MEMORY"]
    assert len(rows) == 3 and all(len(row.split("\t")) == 6 for row in rows)
    assert "64.0 GiB" in done.stdout and "ecc_uncorrectable=2 [drain]" in done.stdout
    assert "npu-smi (huawei): 2 device(s) of type Ascend-910B" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"verdict: {ECC_LINE}"


@pytest.mark.parametrize(
    ("tools", "code", "line"),
    [
        ({"npu-smi": ASCEND_910B2C.read_text()}, 0, "ok: npu-smi: 2 x Ascend-910B"),
        ({"nvidia-smi": a10g_with(temperature="96 C")}, 0, "degrade: device 0 (NVIDIA A10G)"),
        ({"nvidia-smi": a10g_with()}, 0, "ok: nvidia-smi: 1 x NVIDIA A10G (not in the catalog)"),
        ({"nvidia-smi": a10g_with(remap_pending="Yes")}, 1, "cordon: device 0 (NVIDIA A10G)"),
        ({"nvidia-smi": a10g_with(ecc_uncorrectable="2")}, 1, ECC_LINE),
        ({}, 3, "health unknown: no device tool on PATH (looked for nvidia-smi, amd-smi"),
        ({"nvidia-smi": "No devices were found\n"}, 3, "health unknown: nvidia-smi printed"),
    ],
)
def test_check_prints_one_line_and_exits_with_the_documented_code(tmp_path, tools, code, line):
    bin_dir = tmp_path / "bin"
    for name, text in tools.items():
        printing(bin_dir, name, text)
    done = suan("devices", "check", bin_dir=bin_dir)
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout.startswith(line) and done.stdout.count("\n") == 1, done.stdout


def test_check_with_a_hung_tool_is_unknown_within_its_timeout(tmp_path):
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "npu-smi", "sleep 60")
    done = suan("devices", "check", "--timeout", "0.5", bin_dir=bin_dir)
    assert done.returncode == 3
    assert done.stdout == "health unknown: npu-smi: no answer in 0.5 s\n"


def test_a_fault_is_not_hidden_by_another_tool_that_failed(tmp_path):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    tool(bin_dir, "amd-smi", "echo 'amdgpu driver not loaded' >&2; exit 1")
    done = suan("devices", "check", bin_dir=bin_dir)
    assert (done.returncode, done.stdout) == (1, ECC_LINE + "\n")


def test_slurm_drain_without_slurm_says_so_and_keeps_the_verdicts_code(tmp_path):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    done = suan("devices", "check", "--slurm-drain", "--node", "n9", bin_dir=bin_dir)
    assert done.returncode == 1
    said = "slurm: could not read n9's state: sinfo not found on PATH"
    assert done.stdout == f"{ECC_LINE} | {said}\n"


def test_node_without_slurm_drain_is_a_usage_error(tmp_path):
    done = suan("devices", "check", "--node", "n1", bin_dir=tmp_path / "bin")
    assert done.returncode == 2 and "--slurm-drain" in done.stderr


def test_a_bad_timeout_is_a_usage_error_naming_the_option(tmp_path):
    done = suan("devices", "check", "--timeout", "0", bin_dir=tmp_path / "bin")
    assert done.returncode == 2 and "--timeout" in done.stderr


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.text(min_size=1, max_size=600))
def test_a_slurm_reason_fits_slurms_limit_and_keeps_its_severity(text):
    reason = slurm_reason(f"drain: {text}")
    assert len(reason.encode()) <= REASON_BYTES and "\n" not in reason
    assert reason.startswith("suan: drain:") and severity_in_reason(reason) is Severity.DRAIN
    short = " ".join(f"drain: {text}".split())
    if len(("suan: " + short).encode()) <= REASON_BYTES:
        assert reason == "suan: " + short
    else:
        assert reason.endswith("...")


def test_only_a_reason_this_check_wrote_carries_a_severity():
    assert severity_in_reason("suan: cordon: device 3 (910B2C) health: Alarm") is Severity.CORDON
    assert severity_in_reason("fan fault") is None
    assert severity_in_reason("suan: warn: device 0 temperature") is None
