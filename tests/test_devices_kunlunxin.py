"""`xpu-smi` parsing, on captured driver 5.x output from eight P800 and driver 4.x output
from two R300 (sources in tests/fixtures/devices/kunlunxin/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import kunlunxin
from suan.devices.model import UnexpectedOutput

P800 = fixture("kunlunxin", "xpu_smi_p800_5.0.21.21.txt")
R300 = fixture("kunlunxin", "xpu_smi_r300_4.31.txt")


def test_tool_and_signals_are_declared() -> None:
    assert kunlunxin.TOOL == ("xpu-smi",)
    emitted = {s.name for text in (P800, R300) for r in kunlunxin.parse(text) for s in r.signals}
    assert emitted == set(kunlunxin.SIGNALS)


def test_driver_5_reads_eight_p800_with_their_ecc_count() -> None:
    readings = kunlunxin.parse(P800)
    assert [r.index for r in readings] == list(range(8))
    assert {r.model for r in readings} == {"P800 OAM"}
    assert {r.memory_mib for r in readings} == {98304}
    assert {value(r, "ecc_uncorrectable") for r in readings} == {0.0}
    assert [value(r, "temperature_c") for r in readings] == [
        37.0,
        41.0,
        36.0,
        36.0,
        40.0,
        40.0,
        39.0,
        40.0,
    ]
    assert value(readings[7], "power_w") == 87.0


def test_an_uncorrectable_ecc_count_is_read_and_na_emits_none() -> None:
    counted = P800.replace(
        "| 00000000:05:00.0 N/A |                    0 |",
        "| 00000000:05:00.0 N/A |                    2 |",
    )
    assert value(kunlunxin.parse(counted)[1], "ecc_uncorrectable") == 2.0
    unknown = P800.replace(
        "| 00000000:05:00.0 N/A |                    0 |",
        "| 00000000:05:00.0 N/A |                  N/A |",
    )
    assert value(kunlunxin.parse(unknown)[1], "ecc_uncorrectable") is None


def test_driver_4_reads_the_devices_table() -> None:
    first, second = kunlunxin.parse(R300)
    assert [first.index, second.index] == [0, 1]
    assert (first.model, first.memory_mib) == ("R300", 32768)
    assert value(second, "utilization_pct") == 0.0
    assert value(second, "memory_used_mib") == 0.0
    assert value(first, "temperature_c") is None


def test_a_device_missing_its_l3_row_is_refused() -> None:
    lines = P800.splitlines()
    del lines[10]
    with pytest.raises(UnexpectedOutput):
        kunlunxin.parse("\n".join(lines))


def test_output_of_another_tool_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="XPU-SMI"):
        kunlunxin.parse(fixture("iluvatar", "ixsmi_bi-v150_4.1.0.txt"))


@DAMAGE
@given(damaged(P800))
def test_damaged_driver_5_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(kunlunxin.parse, text)


@DAMAGE
@given(damaged(R300))
def test_damaged_driver_4_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(kunlunxin.parse, text)
