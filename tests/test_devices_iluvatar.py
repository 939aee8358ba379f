"""`ixsmi` parsing, on captured IX-ML 4.1.0 output from sixteen BI-V150 (source in
tests/fixtures/devices/iluvatar/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import iluvatar
from suan.devices.model import UnexpectedOutput

SIXTEEN = fixture("iluvatar", "ixsmi_bi-v150_4.1.0.txt")


def test_tool_and_signals_are_declared() -> None:
    assert iluvatar.TOOL == ("ixsmi",)
    emitted = {s.name for r in iluvatar.parse(SIXTEEN) for s in r.signals}
    assert emitted == set(iluvatar.SIGNALS)


def test_sixteen_gpus_are_read_in_order() -> None:
    readings = iluvatar.parse(SIXTEEN)
    assert [r.index for r in readings] == list(range(16))
    assert {r.model for r in readings} == {"Iluvatar BI-V150"}
    assert {r.memory_mib for r in readings} == {32768}
    assert {value(r, "memory_used_mib") for r in readings} == {116.0}
    assert value(readings[0], "temperature_c") == 32.0
    assert value(readings[1], "temperature_c") == 30.0


def test_power_printed_as_na_emits_no_signal() -> None:
    readings = iluvatar.parse(SIXTEEN)
    assert [value(r, "power_w") for r in readings[:4]] == [None, 93.0, None, 94.0]


def test_a_row_with_a_missing_column_is_refused() -> None:
    text = SIXTEEN.replace("| 0%   30C   P0    93W / 350W   |", "| 0%   30C   93W / 350W        |")
    with pytest.raises(UnexpectedOutput, match="used / total"):
        iluvatar.parse(text)


def test_output_of_another_tool_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="IX-ML"):
        iluvatar.parse(fixture("kunlunxin", "xpu_smi_p800_5.0.21.21.txt"))


@DAMAGE
@given(damaged(SIXTEEN))
def test_damaged_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(iluvatar.parse, text)
