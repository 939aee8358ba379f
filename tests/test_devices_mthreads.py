"""`mthreads-gmi` parsing, on captured 1.12.2 output from one MTT S4000 and 2.4.1 output from
eight MTT S5000 (sources in tests/fixtures/devices/mthreads/SOURCE)."""

from __future__ import annotations

import pytest
from devices_cn_helpers import DAMAGE, damaged, fixture, read_or_refuse, value
from hypothesis import given

from suan.devices import mthreads
from suan.devices.model import UnexpectedOutput

S4000 = fixture("mthreads", "mthreads_gmi_s4000_1.12.2.txt")
S5000 = fixture("mthreads", "mthreads_gmi_s5000_2.4.1.txt")


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


def test_release_2_reads_eight_s5000_past_the_perf_column() -> None:
    readings = mthreads.parse(S5000)
    assert [r.index for r in readings] == list(range(8))
    assert {(r.model, r.memory_mib) for r in readings} == {("MTT S5000", 81920)}
    assert [value(r, "temperature_c") for r in readings] == [48, 48, 49, 48, 48, 50, 48, 49]
    assert {value(r, "pcie_lanes_missing") for r in readings} == {0.0}


def test_a_table_without_its_ecc_mode_lines_is_refused() -> None:
    kept = [line for line in S5000.splitlines() if "ECC Mode" not in line and "On-die" not in line]
    with pytest.raises(UnexpectedOutput, match="header"):
        mthreads.parse("\n".join(kept))


def test_output_of_another_tool_is_refused() -> None:
    with pytest.raises(UnexpectedOutput, match="mthreads-gmi"):
        mthreads.parse(fixture("hygon", "hy_smi_k100ai_dtk24.04.1.txt"))


@DAMAGE
@given(damaged(S4000))
def test_damaged_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(mthreads.parse, text)


@DAMAGE
@given(damaged(S5000))
def test_damaged_release_2_output_is_read_or_refused(text: str) -> None:
    read_or_refuse(mthreads.parse, text)
