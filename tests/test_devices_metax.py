"""`mx-smi` parsing, on captured 2.1.6 and 2.2.4 output from eight C550 each (sources in
tests/fixtures/devices/metax/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import metax
from suan.devices.model import UnexpectedOutput

RELEASE_21 = fixture("metax", "mx_smi_c550_2.1.6.txt")
RELEASE_22 = fixture("metax", "mx_smi_c550_2.2.4.txt")


def test_tool_and_signals_are_declared() -> None:
    assert metax.TOOL == ("mx-smi",)
    emitted = {
        s.name for text in (RELEASE_21, RELEASE_22) for r in metax.parse(text) for s in r.signals
    }
    assert emitted == set(metax.SIGNALS)


def test_release_2_1_reads_power_draw_and_has_no_state() -> None:
    readings = metax.parse(RELEASE_21)
    assert [r.index for r in readings] == list(range(8))
    assert {r.model for r in readings} == {"MXC550"}
    assert [value(r, "power_w") for r in readings] == [
        44.0,
        46.0,
        47.0,
        46.0,
        46.0,
        47.0,
        46.0,
        47.0,
    ]
    assert {value(r, "health") for r in readings} == {None}
    assert {(r.memory_mib, value(r, "memory_used_mib")) for r in readings} == {(65536, 810.0)}


def test_release_2_2_reads_usage_over_cap_and_the_gpu_state() -> None:
    readings = metax.parse(RELEASE_22)
    assert readings[5].model == "MetaX C550"
    assert value(readings[5], "power_w") == 55.0
    assert value(readings[5], "temperature_c") == 32.0
    assert {value(r, "health") for r in readings} == {"Available"}


def test_the_gpu_state_word_is_passed_on_as_printed() -> None:
    text = RELEASE_22.replace("| Available            |", "| Unavailable          |", 1)
    assert value(metax.parse(text)[0], "health") == "Unavailable"


def test_a_state_in_a_2_1_table_is_refused() -> None:
    text = RELEASE_21.replace(
        "| 810/65536 MiB       |                      |",
        "| 810/65536 MiB       | Available            |",
        1,
    )
    with pytest.raises(UnexpectedOutput, match="empty last cell"):
        metax.parse(text)


def test_output_of_another_tool_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="mx-smi"):
        metax.parse(fixture("cambricon", "cnmon_mlu370x8_5.10.13.txt"))


@DAMAGE
@given(damaged(RELEASE_22))
def test_damaged_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(metax.parse, text)
