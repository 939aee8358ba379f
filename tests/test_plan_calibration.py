"""The model against published measurements (skipped when the shared CSV is absent)."""

import pytest

from suan.plan.calibrate import DEFAULT_CSV, HOLDOUT_CSV, main, run, summary

TARGET_MAPE = 10.0


@pytest.mark.skipif(not DEFAULT_CSV.is_file(), reason="shared calibration CSV not present")
def test_calibration_rows_within_target():
    table = summary(run([DEFAULT_CSV]))
    assert table["all"]["throughput_mape"] <= TARGET_MAPE
    assert table["all"]["memory_mape"] <= TARGET_MAPE
    for group, stats in table.items():
        assert stats["throughput_mape"] <= TARGET_MAPE, group


def test_holdout_rows_within_target():
    table = summary(run([HOLDOUT_CSV]))
    assert table["all"]["throughput_rows"] > 50
    assert table["all"]["throughput_mape"] <= TARGET_MAPE


def test_missing_csv_is_skipped_cleanly(tmp_path, capsys):
    assert main(["--csv", str(tmp_path / "absent.csv")]) == 0
    assert "skipped" in capsys.readouterr().out
