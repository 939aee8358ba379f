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


def test_fitted_constants_are_restored_after_trying_others():
    from suan.plan import efficiency
    from suan.plan.fit import FITTED, constants
    before = tuple(getattr(efficiency, name) for name in FITTED)
    with constants((0.0, 0.6, 8.0)):
        assert efficiency.ELEMENTWISE_PASSES == 8.0
    assert tuple(getattr(efficiency, name) for name in FITTED) == before


@pytest.mark.skipif(not DEFAULT_CSV.is_file(), reason="shared calibration CSV not present")
def test_fitted_constants_are_the_calibration_grid_minimum():
    from suan.plan import efficiency
    from suan.plan.calibrate import read_rows
    from suan.plan.fit import FITTED, fit
    _, best = fit(read_rows(DEFAULT_CSV))
    assert best == tuple(getattr(efficiency, name) for name in FITTED)


def test_holdout_memory_rows_within_target():
    table = summary(run([HOLDOUT_CSV]))
    assert table["all"]["memory_rows"] >= 5
    assert table["all"]["memory_mape"] <= TARGET_MAPE
