"""`npu-smi info` parsing, on captured output from Atlas 800 training and inference servers
and a 910B2C host (sources in tests/fixtures/devices/ascend/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import ascend
from suan.devices.model import UnexpectedOutput

TRAINING = fixture("ascend", "npu_smi_info_atlas800_9010_24.1.RC2.txt")
TRAINING_910A = fixture("ascend", "npu_smi_info_atlas800_9010_22.0.3.1.txt")
INFERENCE = fixture("ascend", "npu_smi_info_atlas800_3000_21.0.4.txt")
INFERENCE_OLD = fixture("ascend", "npu_smi_info_atlas800_3000_20.2.0.txt")
HBM_910B = fixture("ascend", "npu_smi_info_910b2c_23.0.3.txt")
ALL = [TRAINING, TRAINING_910A, INFERENCE, INFERENCE_OLD, HBM_910B]


def test_tool_and_signals_are_declared() -> None:
    assert ascend.TOOL == ("npu-smi", "info")
    emitted = {signal.name for text in ALL for r in ascend.parse(text) for signal in r.signals}
    assert emitted == set(ascend.SIGNALS)


def test_training_server_reports_the_warning_chips() -> None:
    readings = ascend.parse(TRAINING)
    assert [r.index for r in readings] == list(range(8))
    assert [value(r, "health") for r in readings] == [
        "OK", "OK", "OK", "Warning", "OK", "OK", "OK", "Warning",
    ]  # fmt: skip
    third = readings[3]
    assert value(third, "power_w") == 206.9
    assert value(third, "temperature_c") == 39.0
    assert third.memory_mib == 32768  # HBM, not the 15039 MB of the chip's control memory


def test_hbm_is_the_device_memory_where_the_chip_has_it() -> None:
    first, second = ascend.parse(HBM_910B)
    assert (first.model, first.memory_mib, value(first, "memory_used_mib")) == (
        "910B2C",
        65536,
        3317.0,
    )
    assert value(second, "utilization_pct") == 0.0
    assert value(second, "power_w") == 93.8


def test_boards_of_several_chips_are_indexed_by_their_device_id() -> None:
    readings = ascend.parse(INFERENCE)
    assert [r.index for r in readings] == [3, 4, 5, 6]
    assert [r.model for r in readings] == ["310"] * 4
    assert [value(r, "memory_used_mib") for r in readings] == [2703.0, 2867.0, 2867.0, 2867.0]
    assert {r.memory_mib for r in readings} == {8192}


def test_a_table_without_hugepages_or_hbm_columns_is_read_by_its_header() -> None:
    readings = ascend.parse(INFERENCE_OLD)
    assert [value(r, "temperature_c") for r in readings] == [56.0, 57.0, 57.0, 55.0]


def test_910a_control_memory_is_not_taken_for_hbm() -> None:
    readings = ascend.parse(TRAINING_910A)
    assert {r.memory_mib for r in readings} == {32768}
    assert {value(r, "memory_used_mib") for r in readings} == {0.0}


def test_every_documented_health_word_is_passed_on() -> None:
    for word in ("Alarm", "Critical", "UNKNOWN"):
        text = TRAINING.replace("| Warning       |", f"| {word:<13} |", 1)
        assert value(ascend.parse(text)[3], "health") == word


def test_an_unknown_health_word_is_refused_with_the_line() -> None:
    text = TRAINING.replace("| Warning       |", "| Degraded      |", 1)
    with pytest.raises(UnexpectedOutput, match="Degraded"):
        ascend.parse(text)


def test_an_unknown_column_is_refused_not_guessed() -> None:
    text = HBM_910B.replace("HBM-Usage(MB)", "HBM-Used(GB) ", 1)
    with pytest.raises(UnexpectedOutput, match="HBM-Used"):
        ascend.parse(text)


def test_a_second_chip_without_a_device_column_is_refused() -> None:
    lines = HBM_910B.splitlines()
    lines[10] = lines[10].replace("| 0                         |", "| 1                         |")
    with pytest.raises(UnexpectedOutput, match="chip other than 0"):
        ascend.parse("\n".join(lines))


def test_output_of_another_tool_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="npu-smi"):
        ascend.parse(fixture("cambricon", "cnmon_mlu370x8_5.10.13.txt"))
    with pytest.raises(UnexpectedOutput):
        ascend.parse("")


@DAMAGE
@given(damaged(TRAINING))
def test_damaged_training_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(ascend.parse, text)


@DAMAGE
@given(damaged(INFERENCE))
def test_damaged_inference_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(ascend.parse, text)
