"""The model against published measurements: the shared calibration rows and the hold-out."""

import pytest

from suan.plan.calibrate import HOLDOUT_CSV, main, run, summary

TARGET_MAPE = 10.0


@pytest.fixture
def calibration_csv(shared):
    return shared("planner", "calibration.csv")


def test_calibration_rows_within_target(calibration_csv):
    table = summary(run([calibration_csv]))
    assert table["all"]["throughput_mape"] <= TARGET_MAPE
    assert table["all"]["memory_mape"] <= TARGET_MAPE
    for group, stats in table.items():
        assert stats["throughput_mape"] <= TARGET_MAPE, group


def test_holdout_rows_within_target():
    table = summary(run([HOLDOUT_CSV]))
    assert table["all"]["throughput_rows"] > 50
    assert table["all"]["throughput_mape"] <= TARGET_MAPE


def test_a_missing_csv_is_an_error_naming_the_setting(tmp_path, capsys):
    from suan.plan.fit import main as fit_main

    for command in (main, fit_main):
        assert command(["--csv", str(tmp_path / "absent.csv")]) == 1
        error = capsys.readouterr().err
        assert "absent.csv" in error and "SUAN_SHARED" in error


def test_fitted_constants_are_restored_after_trying_others():
    from suan.plan import efficiency
    from suan.plan.fit import FITTED, constants
    before = tuple(getattr(efficiency, name) for name in FITTED)
    with constants((0.0, 0.6, 8.0)):
        assert efficiency.ELEMENTWISE_PASSES == 8.0
    assert tuple(getattr(efficiency, name) for name in FITTED) == before


def test_fitted_constants_are_the_calibration_grid_minimum(calibration_csv):
    from suan.plan import efficiency
    from suan.plan.calibrate import read_rows
    from suan.plan.fit import FITTED, fit
    _, best = fit(read_rows(calibration_csv))
    assert best == tuple(getattr(efficiency, name) for name in FITTED)


def test_holdout_memory_rows_within_target():
    table = summary(run([HOLDOUT_CSV]))
    assert table["all"]["memory_rows"] >= 5
    assert table["all"]["memory_mape"] <= TARGET_MAPE
