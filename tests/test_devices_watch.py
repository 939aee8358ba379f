"""Device health on the local node: the watch reads in the background and applies its verdict;
the local engine's inventory shows it, with a real tool (a script on PATH printing a captured
report) behind it; a hung tool never holds the inventory up and leaves the node ready."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from devices_helpers import A10G, a10g_with, path_env, printing, tool

from suan.cluster.model import Node, NodeHealth
from suan.devices.model import DeviceReading, Signal, ToolReport
from suan.devices.settings import HealthSettings, watch_for_node
from suan.devices.severity import default_severity_table, judge
from suan.devices.watch import HEALTH_LABEL, DeviceWatch, apply_verdict
from suan.errors import SpecError
from suan.exec.engines import open_executor

NODE = Node("n1", "H100-SXM-80GB", 8, ((0, 1, 2, 3, 4, 5, 6, 7),))


def report(*signals: Signal, index: int = 2) -> ToolReport:
    return ToolReport("nvidia", "nvidia-smi", (DeviceReading(index, "H100", signals=signals),))


def verdict_of(*signals: Signal):
    return judge(report(*signals), default_severity_table())


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_fatal_device_signal_cordons_the_node_and_takes_the_device_out():
    node = apply_verdict(NODE, verdict_of(Signal("ecc_uncorrectable", 1, "2 errors")))
    assert node.health is NodeHealth.CORDONED and node.unhealthy_devices == frozenset({2})
    assert node.health_reason == "drain: device 2 (H100) ecc_uncorrectable: 2 errors"
    assert node.labels[HEALTH_LABEL] == "drain" and node.usable_devices == 7


def test_degrade_warn_and_unknown_leave_the_node_schedulable():
    degraded = apply_verdict(NODE, verdict_of(Signal("hw_slowdown", "Active")))
    assert degraded.health is NodeHealth.DEGRADED and degraded.unhealthy_devices == frozenset()
    unknown = judge(
        ToolReport("nvidia", "nvidia-smi", unknown="nvidia-smi: no answer in 5 s"),
        default_severity_table(),
    )
    shown = apply_verdict(NODE, unknown)
    assert shown.health is NodeHealth.READY and shown.labels[HEALTH_LABEL] == "unknown"
    assert shown.health_reason == "health unknown: nvidia-smi: no answer in 5 s"
    healthy = apply_verdict(NODE, verdict_of(Signal("ecc_uncorrectable", 0)))
    assert healthy == NODE and healthy.labels[HEALTH_LABEL] == "ok"


def test_a_down_node_stays_down_and_keeps_the_engines_reason_first():
    down = replace(NODE, health=NodeHealth.DOWN, health_reason="slurm: not responding")
    node = apply_verdict(down, verdict_of(Signal("remapped_rows_pending", "Yes")))
    assert node.health is NodeHealth.DOWN
    assert node.health_reason.startswith("slurm: not responding; cordon: device 2")


def test_the_watch_reads_in_the_background_once_per_period():
    reads: list[float] = []
    now = [0.0]

    def read() -> ToolReport:
        reads.append(now[0])
        return report(Signal("ecc_uncorrectable", 1))

    watch = DeviceWatch(read, period_s=60, clock=lambda: now[0])
    assert watch.apply(NODE) == NODE  # the first reading has only started
    wait_for(lambda: watch.apply(NODE).health is NodeHealth.CORDONED)
    now[0] = 30.0
    watch.apply(NODE)
    now[0] = 61.0
    watch.apply(NODE)
    wait_for(lambda: len(reads) == 2)
    assert reads == [0.0, 61.0]


def test_a_reading_that_hangs_never_holds_apply_up():
    release = threading.Event()

    def read() -> ToolReport:
        release.wait(30)
        return report()

    watch = DeviceWatch(read, period_s=0.01)
    started = time.monotonic()
    for _ in range(50):
        assert watch.apply(NODE) == NODE
    assert time.monotonic() - started < 1.0
    assert threading.active_count() < 10, "one reading at a time"
    release.set()


def test_a_reader_that_raises_shows_health_unknown():
    def read() -> ToolReport:
        raise RuntimeError("boom")

    verdict = DeviceWatch(read).read_now()
    assert verdict.reason == "health unknown: reading failed: boom"


def test_settings_turn_the_watch_on_for_real_devices_and_off_for_simulated_slots():
    assert watch_for_node(NODE, HealthSettings(), _catalog(), simulated=True) is None
    assert watch_for_node(NODE, HealthSettings(), _catalog(), simulated=False) is not None
    forced = HealthSettings.model_validate({"enabled": "on", "periodSeconds": 5})
    watch = watch_for_node(NODE, forced, _catalog(), simulated=True)
    assert watch is not None and watch.period_s == 5 and watch.expected_devices is None
    off = HealthSettings.model_validate({"enabled": "off"})
    assert watch_for_node(NODE, off, _catalog(), simulated=False) is None
    amd_node = replace(NODE, accelerator="MI300X")
    with pytest.raises(SpecError, match=r"local\.health\.reader"):
        watch_for_node(amd_node, HealthSettings(reader="nvml"), _catalog(), simulated=False)


def test_a_bad_health_setting_names_the_field(tmp_path):
    with pytest.raises(SpecError, match=r"local\.health\.periodSeconds"):
        open_executor("local", tmp_path, {"devices": "2xH100", "health": {"periodSeconds": -1}})


def local_inventory(home: Path, bin_dir: Path, monkeypatch, **health) -> object:
    monkeypatch.setenv("PATH", path_env(bin_dir)["PATH"])
    section = {
        "devices": "2xH100",
        "sandbox": "off",
        "cgroups": "off",
        "health": {"enabled": "on", "periodSeconds": 0.2, "timeoutSeconds": 1, **health},
    }
    executor, simulated = open_executor("local", home, section)
    assert simulated
    return executor


def test_the_local_inventory_cordons_a_node_whose_gpu_reports_uncorrectable_ecc(
    tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    printing(bin_dir, "nvidia-smi", a10g_with(ecc_uncorrectable="2"))
    executor = local_inventory(tmp_path / "home", bin_dir, monkeypatch)
    (node,) = wait_for(
        lambda: (nodes := executor.inventory())[0].health is NodeHealth.CORDONED and nodes
    )
    assert node.unhealthy_devices == frozenset({0})
    assert node.health_reason == (
        "drain: device 0 (NVIDIA A10G) ecc_uncorrectable: volatile uncorrectable ECC errors: 2"
    )
    printing(bin_dir, "nvidia-smi", A10G.read_text())  # the GPU was reset and is healthy
    wait_for(lambda: executor.inventory()[0].health is NodeHealth.READY)
    assert executor.inventory()[0].labels[HEALTH_LABEL] == "ok"


def test_a_hung_tool_leaves_the_node_ready_with_health_unknown(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "nvidia-smi", "sleep 60")
    executor = local_inventory(tmp_path / "home", bin_dir, monkeypatch)
    started = time.monotonic()
    (first,) = executor.inventory()
    assert time.monotonic() - started < 0.5, "the inventory waited for the tool"
    assert first.health is NodeHealth.READY
    (node,) = wait_for(
        lambda: (nodes := executor.inventory())[0].health_reason and nodes, timeout=15
    )
    assert node.health is NodeHealth.READY
    assert node.health_reason == "health unknown: nvidia-smi: no answer in 1 s"


def _catalog():
    from suan.catalog import default_catalog

    return default_catalog()
