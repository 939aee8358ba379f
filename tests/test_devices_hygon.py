"""`hy-smi` parsing, on captured DTK 24.04.1 output from four K100_AI (sources in
tests/fixtures/devices/hygon/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import hygon
from suan.devices.model import UnexpectedOutput

FOUR = fixture("hygon", "hy_smi_k100ai_dtk24.04.1.txt")
ROCM_SMI = fixture("hygon", "rocm_smi_on_dcu_dtk23.10.1.txt")


def test_tool_and_signals_are_declared() -> None:
    assert hygon.TOOL == ("hy-smi",)
    emitted = {s.name for r in hygon.parse(FOUR) for s in r.signals}
    assert emitted == set(hygon.SIGNALS)


def test_four_dcus_are_read() -> None:
    readings = hygon.parse(FOUR)
    assert [r.index for r in readings] == [0, 1, 2, 3]
    assert [value(r, "temperature_c") for r in readings] == [49.0, 48.0, 53.0, 49.0]
    assert [value(r, "power_w") for r in readings] == [118.0, 120.0, 116.0, 138.0]
    assert {value(r, "memory_used_pct") for r in readings} == {0.0}
    assert {r.memory_mib for r in readings} == {None}


def test_rocm_smi_output_under_the_same_banner_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="Fan"):
        hygon.parse(ROCM_SMI)


def test_output_cut_before_its_end_banner_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="End of SMI Log"):
        hygon.parse(FOUR.rsplit("=====\n", 2)[0])


@DAMAGE
@given(damaged(FOUR))
def test_damaged_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(hygon.parse, text)
