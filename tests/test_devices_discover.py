"""Discovery through real tool processes on a PATH of the test's own, printing the captured
outputs: the right catalog type and count per vendor, unknown models reported (not guessed),
a hung tool bounded by its timeout, and `local_node(None)` built from what was found."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from devices_helpers import A100, FIXTURES, T4, a10g_with, printing, tool

from suan.catalog import default_catalog
from suan.devices.discover import catalog_type_of, detect_devices, discover
from suan.exec.local_node import local_node

ASCEND_910B2C = FIXTURES / "ascend" / "npu_smi_info_910b2c_23.0.3.txt"
P800 = FIXTURES / "kunlunxin" / "xpu_smi_p800_5.0.21.21.txt"
BI_V150 = FIXTURES / "iluvatar" / "ixsmi_bi-v150_4.1.0.txt"
MLU370 = FIXTURES / "cambricon" / "cnmon_mlu370x8_5.10.13.txt"
S4000 = FIXTURES / "mthreads" / "mthreads_gmi_s4000_1.12.2.txt"
C550 = FIXTURES / "metax" / "mx_smi_c550_2.1.6.txt"


def isolated_path(bin_dir: Path) -> dict[str, str]:
    """An environment whose PATH is `bin_dir` alone, with the two commands the fake tools use
    linked in: no real vendor tool of this machine can answer."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for command in ("cat", "sleep"):
        (bin_dir / command).symlink_to(shutil.which(command))
    return {"PATH": str(bin_dir)}


@pytest.mark.parametrize(
    ("tool_name", "fixture", "vendor", "accelerator", "count"),
    [
        ("nvidia-smi", A100, "nvidia", "A100-80GB", 1),
        ("nvidia-smi", T4, "nvidia", "T4", 1),
        ("npu-smi", ASCEND_910B2C, "huawei", "Ascend-910B", 2),
        ("xpu-smi", P800, "kunlunxin", "Kunlunxin-P800", 8),
        ("ixsmi", BI_V150, "iluvatar", "BI-V150", 16),
        ("cnmon", MLU370, "cambricon", "MLU370-X8", 2),
        ("mthreads-gmi", S4000, "moorethreads", "MTT-S4000", 1),
    ],
)
def test_each_vendor_tool_gives_the_catalog_type_and_count(
    tmp_path, tool_name, fixture, vendor, accelerator, count
):
    env = isolated_path(tmp_path)
    printing(tmp_path, tool_name, fixture.read_text())
    (found,) = discover(env=env)
    assert (found.vendor, found.tool) == (vendor, tool_name)
    assert (found.accelerator, found.count, found.problem) == (accelerator, count, "")
    assert [reading.index for reading in found.readings] == list(range(count))


def test_an_unknown_model_is_reported_by_name_and_not_guessed(tmp_path):
    env = isolated_path(tmp_path)
    printing(tmp_path, "mx-smi", C550.read_text())  # C550: the catalog has the C500 only
    printing(tmp_path, "nvidia-smi", a10g_with())  # A10G: not the catalog's A10
    found = {d.vendor: d for d in discover(env=env)}
    assert found["metax"].accelerator is None and found["metax"].unmapped == ("MXC550",)
    assert found["metax"].count == 8
    assert "'MXC550' not in the accelerator catalog" in found["metax"].problem
    assert found["nvidia"].accelerator is None and found["nvidia"].unmapped == ("NVIDIA A10G",)
    assert detect_devices(env=env) is None


def test_only_tools_on_path_run_and_none_gives_an_empty_list(tmp_path):
    assert discover(env=isolated_path(tmp_path)) == []


def test_a_hung_tool_is_unknown_after_its_timeout_and_does_not_hold_the_others(tmp_path):
    env = isolated_path(tmp_path)
    tool(tmp_path, "cnmon", "sleep 60")
    tool(tmp_path, "xpu-smi", "sleep 60")
    printing(tmp_path, "npu-smi", ASCEND_910B2C.read_text())
    started = time.monotonic()
    found = {d.vendor: d for d in discover(timeout_s=1.0, env=env)}
    took = time.monotonic() - started
    assert found["cambricon"].report.unknown == "cnmon: no answer in 1 s"
    assert found["kunlunxin"].report.unknown == "xpu-smi: no answer in 1 s"
    assert found["cambricon"].problem == "health unknown: cnmon: no answer in 1 s"
    assert found["huawei"].accelerator == "Ascend-910B"
    # the two hung tools run at the same time: one timeout (plus the kill), not two
    assert took < 1.0 + 1.5, f"discovery took {took:.1f} s"
    assert detect_devices(timeout_s=1.0, env=env).vendor == "huawei"


def test_the_tool_with_most_devices_of_one_type_builds_the_node(tmp_path):
    env = isolated_path(tmp_path)
    printing(tmp_path, "nvidia-smi", T4.read_text())
    printing(tmp_path, "ixsmi", BI_V150.read_text())
    best = detect_devices(env=env)
    assert (best.accelerator, best.count, best.vendor) == ("BI-V150", 16, "iluvatar")


def test_local_node_uses_discovery_when_nvidia_smi_finds_nothing(tmp_path, monkeypatch):
    env = isolated_path(tmp_path)
    tool(tmp_path, "nvidia-smi", "echo 'No devices were found' >&2; exit 6")
    printing(tmp_path, "npu-smi", ASCEND_910B2C.read_text())
    monkeypatch.setenv("PATH", env["PATH"])
    node, simulated = local_node(None)
    assert not simulated
    assert (node.accelerator, node.devices) == ("Ascend-910B", 2)
    assert node.domains == default_catalog().get("Ascend-910B").domain_layout(2)


def test_local_node_is_simulated_when_no_tool_finds_a_known_type(tmp_path, monkeypatch):
    env = isolated_path(tmp_path)
    printing(tmp_path, "mx-smi", C550.read_text())
    monkeypatch.setenv("PATH", env["PATH"])
    node, simulated = local_node(None)
    assert simulated and (node.accelerator, node.devices) == ("H100-SXM-80GB", 8)


@pytest.mark.parametrize(
    ("model", "vendor", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB", "nvidia", "A100-80GB"),  # tests/fixtures/devices/nvidia
        ("Tesla T4", "nvidia", "T4"),
        ("NVIDIA H100 80GB HBM3", "nvidia", "H100-SXM-80GB"),  # nvidia-smi on an HGX H100
        ("NVIDIA A10G", "nvidia", None),  # a different SKU from the catalog's A10
        ("NVIDIA H100 PCIe", "nvidia", None),  # not the SXM part the catalog describes
        ("910B2C", "huawei", "Ascend-910B"),
        ("910A", "huawei", None),
        ("310", "huawei", None),
        ("MTT S4000", "moorethreads", "MTT-S4000"),
        ("MTT S5000", "moorethreads", None),
        ("P800 OAM", "kunlunxin", "Kunlunxin-P800"),
        ("Iluvatar BI-V150", "iluvatar", "BI-V150"),
        ("MXC500", "metax", "C500"),
        ("MetaX C500", "metax", "C500"),
        ("MXC550", "metax", None),
        ("P800 OAM", "nvidia", None),  # never a type of another vendor
        ("", "amd", None),
    ],
)
def test_model_names_map_to_catalog_types(model, vendor, expected):
    assert catalog_type_of(model, vendor, default_catalog()) == expected
