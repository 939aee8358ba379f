"""`mthreads-gmi` parsing, on captured 1.12.2 output from one MTT S4000 (source in
tests/fixtures/devices/mthreads/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import mthreads
from suan.devices.model import UnexpectedOutput

S4000 = fixture("mthreads", "mthreads_gmi_s4000_1.12.2.txt")


def test_tool_and_signals_are_declared() -> None:
    assert mthreads.TOOL == ("mthreads-gmi",)
    emitted = {s.name for r in mthreads.parse(S4000) for s in r.signals}
    assert emitted == set(mthreads.SIGNALS)


def test_the_s4000_is_read_as_the_tool_printed_it() -> None:
    (reading,) = mthreads.parse(S4000)
    assert (reading.index, reading.model) == (0, "MTT S4000")
    # The captured fault: the tool reports 32768 MiB total and more than that in use.
    assert reading.memory_mib == 32768
    assert value(reading, "memory_used_mib") == 44302.0
    assert value(reading, "utilization_pct") == 88.0
    assert value(reading, "temperature_c") == 65.0
    assert value(reading, "pcie_lanes_missing") == 0.0


def test_a_link_on_fewer_lanes_reports_the_missing_ones() -> None:
    narrow = S4000.replace("|16x(16x)            |", "|4x(16x)             |")
    assert value(mthreads.parse(narrow)[0], "pcie_lanes_missing") == 12.0


def test_the_2x_header_with_a_perf_column_is_refused() -> None:
    text = S4000.replace("     Device Type    |", "     Device Type Perf|")
    with pytest.raises(UnexpectedOutput, match="header"):
        mthreads.parse(text)


def test_output_of_another_tool_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="mthreads-gmi"):
        mthreads.parse(fixture("hygon", "hy_smi_k100ai_dtk24.04.1.txt"))


@DAMAGE
@given(damaged(S4000))
def test_damaged_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(mthreads.parse, text)
