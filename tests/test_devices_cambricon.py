"""`cnmon` parsing, on captured CNMON v5 output (sources in
tests/fixtures/devices/cambricon/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import cambricon
from suan.devices.model import UnexpectedOutput

TWO_CARDS = fixture("cambricon", "cnmon_mlu370x8_5.10.13.txt")
REDACTED = fixture("cambricon", "cnmon_redacted_5.10.31.txt")


def test_tool_is_declared() -> None:
    assert cambricon.TOOL == ("cnmon",)


def test_two_mlu370_cards_are_read() -> None:
    first, second = cambricon.parse(TWO_CARDS)
    assert [first.index, second.index] == [0, 1]
    assert (first.model, first.memory_mib) == ("MLU370-X8", 23374)
    assert value(first, "temperature_c") == 32.0
    assert value(second, "temperature_c") == 39.0
    assert value(first, "power_w") == 106.0
    assert value(first, "utilization_pct") == 0.0
    assert value(first, "memory_used_mib") == 0.0


def test_an_ecc_count_printed_as_na_emits_no_signal_and_a_number_does() -> None:
    first, _ = cambricon.parse(TWO_CARDS)
    assert value(first, "ecc_errors") is None
    shown = TWO_CARDS.replace("| 0%                N/A |", "| 0%                  3 |", 1)
    assert value(cambricon.parse(shown)[0], "ecc_errors") == 3.0


def test_emitted_signals_are_the_declared_ones() -> None:
    shown = TWO_CARDS.replace("| 0%                N/A |", "| 0%                  0 |")
    emitted = {s.name for r in cambricon.parse(shown) for s in r.signals}
    assert emitted == set(cambricon.SIGNALS)


def test_a_redacted_memory_total_is_refused_not_read() -> None:
    with pytest.raises(UnexpectedOutput, match="xxxxx"):
        cambricon.parse(REDACTED)


def test_the_mode_header_of_5_10_31_is_accepted() -> None:
    unredacted = REDACTED.replace("xxxxx MiB", "98304 MiB")
    readings = cambricon.parse(unredacted)
    assert [r.index for r in readings] == list(range(8))
    assert {value(r, "ecc_errors") for r in readings} == {0.0}
    assert value(readings[3], "power_w") == 109.0


def test_a_virtual_function_row_is_refused() -> None:
    text = TWO_CARDS.replace("| 1     /   MLU370-X8", "| 1     1   MLU370-X8", 1)
    with pytest.raises(UnexpectedOutput, match="virtual function"):
        cambricon.parse(text)


def test_output_of_another_tool_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="CNMON"):
        cambricon.parse(fixture("iluvatar", "ixsmi_bi-v150_4.1.0.txt"))


@DAMAGE
@given(damaged(TWO_CARDS))
def test_damaged_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(cambricon.parse, text)
