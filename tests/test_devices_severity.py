"""The severity table (data in the catalog) and the verdict it gives on real readings."""

from __future__ import annotations

import pytest
from devices_helpers import A10G, A100, RX6600, T4, a10g_with

from suan.devices import amd, nvidia
from suan.devices.model import DeviceReading, Severity, Signal, ToolReport
from suan.devices.severity import (
    BUILTIN_TABLE,
    Rule,
    SeverityTable,
    default_severity_table,
    judge,
    load_severity_table,
)
from suan.errors import SpecError

TABLE = default_severity_table()


def nvidia_report(text: str) -> ToolReport:
    return ToolReport("nvidia", "nvidia-smi", devices=tuple(nvidia.parse(text)))


def rule(**fields) -> Rule:
    base = {"vendor": "*", "signal": "s", "severity": "warn", "why": "w", "source": "s"}
    return Rule.model_validate({**base, **fields})


def test_every_row_of_the_built_in_table_says_why_and_cites_a_source():
    assert len(TABLE.rules) >= 15
    for row in TABLE.rules:
        assert row.why.strip() and row.source.strip()
    assert TABLE.rules == load_severity_table(BUILTIN_TABLE).rules


def test_healthy_captures_are_ok():
    for text in (A10G.read_text(), A100.read_text(), T4.read_text()):
        verdict = judge(nvidia_report(text), TABLE, expected_devices=1)
        assert (verdict.severity, verdict.reason, verdict.unhealthy_devices) == (
            Severity.OK,
            "",
            frozenset(),
        )
    amd_report = ToolReport("amd", "amd-smi", devices=tuple(amd.parse(RX6600.read_text())))
    assert judge(amd_report, TABLE).severity is Severity.OK


def test_an_uncorrectable_ecc_error_drains_and_takes_the_device_out():
    verdict = judge(nvidia_report(a10g_with(ecc_uncorrectable="2")), TABLE, expected_devices=1)
    assert verdict.severity is Severity.DRAIN
    assert verdict.unhealthy_devices == frozenset({0})
    assert verdict.reason == (
        "drain: device 0 (NVIDIA A10G) ecc_uncorrectable: volatile uncorrectable ECC errors: 2"
    )


def test_a_pending_row_remap_cordons_and_a_slowdown_degrades():
    cordoned = judge(nvidia_report(a10g_with(remap_pending="Yes")), TABLE)
    assert cordoned.severity is Severity.CORDON and cordoned.unhealthy_devices == {0}
    degraded = judge(nvidia_report(a10g_with(hw_slowdown="Active")), TABLE)
    assert degraded.severity is Severity.DEGRADE and degraded.unhealthy_devices == frozenset()
    assert "hw_slowdown: clock slowdown hw_slowdown: Active" in degraded.reason


def test_findings_are_listed_worst_first():
    verdict = judge(
        nvidia_report(a10g_with(hw_slowdown="Active", ecc_uncorrectable="1", temperature="99 C")),
        TABLE,
    )
    severities = [finding.rule.severity for finding in verdict.findings]
    assert severities == [Severity.DRAIN, Severity.DEGRADE, Severity.DEGRADE]
    assert verdict.reason.startswith("drain: device 0")


def test_fewer_devices_than_the_node_has_drains_the_node():
    verdict = judge(nvidia_report(A10G.read_text()), TABLE, expected_devices=8)
    assert verdict.severity is Severity.DRAIN and verdict.unhealthy_devices == frozenset()
    assert verdict.reason == "drain: node devices_missing: nvidia-smi sees 1 of 8 devices"


def test_unknown_health_is_its_own_verdict_not_a_cordon():
    report = ToolReport("nvidia", "nvidia-smi", unknown="nvidia-smi: no answer in 5 s")
    verdict = judge(report, TABLE, expected_devices=8)
    assert verdict.severity is Severity.OK
    assert verdict.reason == "health unknown: nvidia-smi: no answer in 5 s"


@pytest.mark.parametrize(
    ("xid", "severity"),
    [
        (79, Severity.DRAIN),
        (48, Severity.DRAIN),
        (63, Severity.CORDON),
        (92, Severity.DEGRADE),
        (13, Severity.WARN),
        (31, Severity.WARN),
        (8, None),
    ],
)
def test_xid_codes_map_to_the_catalogued_severity(xid, severity):
    found = TABLE.judge_signal("nvidia", Signal("xid", xid, f"Xid {xid}"))
    assert (found.severity if found else None) == severity


def test_a_vendors_own_rows_replace_the_rows_for_every_vendor():
    table = SeverityTable(
        [
            rule(signal="temperature_c", above=80, severity="degrade"),
            rule(vendor="metax", signal="temperature_c", above=95, severity="warn"),
        ]
    )
    hot = Signal("temperature_c", 90)
    assert table.judge_signal("nvidia", hot).severity is Severity.DEGRADE
    assert table.judge_signal("metax", hot) is None


@pytest.mark.parametrize(
    ("condition", "value", "matches"),
    [
        ({"above": 0}, 1, True),
        ({"above": 0}, 0, False),
        ({"at_least": 2}, 2, True),
        ({"below": 5}, 4.5, True),
        ({"at_most": 0}, -1, True),
        ({"is": "Yes"}, "yes", True),
        ({"is": "Yes"}, "No", False),
        ({"in": [48, 79]}, 79, True),
        ({"not_in": ["None"]}, "Reset", True),
        ({"not_in": ["None"]}, "None", False),
        ({"above": 0}, "N/A", False),
    ],
)
def test_conditions(condition, value, matches):
    assert rule(**condition).matches(value) is matches


def test_a_bad_table_names_the_row_and_field(tmp_path):
    path = tmp_path / "table.yaml"
    path.write_text(
        "rules:\n"
        "  - {vendor: '*', signal: x, above: 0, is: 'Yes', severity: drain, why: w, source: s}\n"
        "  - {vendor: '*', signal: y, above: 0, severity: fatal, why: w, source: s}\n"
        "  - {vendor: '*', signal: z, above: 0, severity: warn, why: w}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_severity_table(path)
    text = str(caught.value)
    assert "rules.0" in text and "exactly one condition" in text
    assert "rules.1.severity" in text
    assert "rules.2.source" in text


def test_a_device_with_several_fatal_signals_is_one_unhealthy_device():
    reading = DeviceReading(
        3,
        "x",
        signals=(Signal("ecc_uncorrectable", 1), Signal("remapped_rows_failure", "Yes")),
    )
    verdict = judge(ToolReport("nvidia", "nvml", devices=(reading,)), TABLE)
    assert verdict.unhealthy_devices == frozenset({3}) and len(verdict.findings) == 2


def test_the_docs_name_every_signal_of_the_table():
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "devices.md").read_text()
    missing = sorted({row.signal for row in TABLE.rules if f"`{row.signal}`" not in docs})
    assert missing == []
