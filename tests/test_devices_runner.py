"""The tool runner against real processes: a tool that is missing, fails, hangs (with a
child holding its output open), or prints garbage gives "health unknown" with a message an
operator can act on, within the timeout, and never raises."""

from __future__ import annotations

import time

from devices_helpers import A10G, path_env, printing, tool

from suan.devices import nvidia
from suan.devices.runner import run_tool
from suan.devices.vendors import VENDOR_MODULES, health_source, read_with_tool

ARGV = ("nvidia-smi", "-q", "-x")


def test_a_tool_that_answers_is_parsed(tmp_path):
    printing(tmp_path, "nvidia-smi", A10G.read_text())
    report = run_tool("nvidia", ARGV, nvidia.parse, 5, path_env(tmp_path))
    assert report.unknown == "" and report.tool == "nvidia-smi"
    assert [device.model for device in report.devices] == ["NVIDIA A10G"]


def test_a_missing_tool_is_named(tmp_path):
    report = run_tool("huawei", ("npu-smi", "info"), nvidia.parse, 5, {"PATH": str(tmp_path)})
    assert report.unknown == "npu-smi: not found on PATH" and report.devices == ()


def test_a_failing_tool_shows_its_exit_status_and_its_own_words(tmp_path):
    said = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    (tmp_path / "said.txt").write_text(said + "\n")
    tool(tmp_path, "nvidia-smi", f'cat "{tmp_path / "said.txt"}" >&2\nexit 9')
    report = run_tool("nvidia", ARGV, nvidia.parse, 5, path_env(tmp_path))
    assert report.unknown == f"nvidia-smi: exited with status 9: {said}"


def test_a_hung_tool_is_killed_with_its_children_after_the_timeout(tmp_path):
    marker = tmp_path / "child.pid"
    tool(tmp_path, "nvidia-smi", f'sleep 60 & echo $! > "{marker}"\nsleep 60')
    started = time.monotonic()
    report = run_tool("nvidia", ARGV, nvidia.parse, 0.5, path_env(tmp_path))
    took = time.monotonic() - started
    assert report.unknown == "nvidia-smi: no answer in 0.5 s"
    assert took < 3, f"the caller waited {took:.1f} s"
    child = int(marker.read_text())
    deadline = time.monotonic() + 5.0  # SIGKILL is delivered at once, reaped a moment later
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child), "the tool's child outlived it"


def test_garbage_output_is_reported_as_unexpected_with_a_quote(tmp_path):
    printing(tmp_path, "nvidia-smi", "No devices were found\n")
    report = run_tool("nvidia", ARGV, nvidia.parse, 5, path_env(tmp_path))
    assert report.unknown.startswith("nvidia-smi printed something unexpected: not XML")
    assert "No devices were found" in report.unknown


def test_a_tool_that_cannot_be_executed_says_so(tmp_path):
    broken = tmp_path / "nvidia-smi"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    report = run_tool("nvidia", ARGV, nvidia.parse, 5, path_env(tmp_path))
    assert report.unknown.startswith("nvidia-smi: could not be started:")


def test_the_registry_reads_each_vendor_through_its_module(tmp_path):
    source = health_source("nvidia")
    assert source is not None and source.tool == ARGV
    assert health_source("amd").tool == ("amd-smi", "metric", "--json")
    printing(tmp_path, "nvidia-smi", A10G.read_text())
    assert read_with_tool("nvidia", 5, path_env(tmp_path)).devices[0].model == "NVIDIA A10G"
    unknown = read_with_tool("enflame", 5)
    assert unknown.unknown.startswith("no health reader for vendor 'enflame'")


def test_every_registered_vendor_is_a_catalog_vendor():
    from suan.catalog import default_catalog

    vendors = {accel.vendor for accel in default_catalog()}
    assert set(VENDOR_MODULES) <= vendors


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
