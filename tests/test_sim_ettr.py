"""`suan sim failures`: the failure-process run against closed forms, its accounting, the
recovery rules, and the command's input checks and JSON. Runs are short (days, not the 54-day
benchmark) except where a formula is compared, which needs many failures."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from suan.checkpoint_interval import best_interval_s, expected_overhead
from suan.cli.main import cli
from suan.errors import SpecError
from suan.sim.ettr import PLANNED, Cadence, Setting, incidents, simulate
from suan.sim.ettr_formula import first_order_ettr, renewal_ettr
from suan.sim.ettr_inputs import Scenario, parse_bandwidth_gbs, scenario_from_options
from suan.sim.ettr_job import TrainingJob
from suan.sim.ettr_rules import baseline_rules, default_spares, setting, suan_rules
from suan.sim.ettr_study import failure_lists, study
from suan.sim.failure_mix import TABLE_5, FailureKind, node_replacing_per_gpu_day

DAY = 86_400.0
IN_PLACE = FailureKind("bug", "test", 1, replaces_node=False)
NODE = FailureKind("gpu", "test", 1, replaces_node=True)
HANG = FailureKind("timeout", "test", 1, replaces_node=False, hangs=True)
# A stand-in for the planner's answer (10.6 s steps), so most tests skip the layout search.
JOB = TrainingJob("llama3-405b", "H100-SXM-80GB", 16_384, "tp8 pp2 dp512 cp2", 10.6, 0.26,
                  405_853_388_800)
FORMULA_TOLERANCE = 0.005
"""Simulated mean ETTR vs a closed form: 10 runs of 540 days see ~4,200 failures each, so the
mean's standard error is below 0.001 (at most 0.0012 for 1 h intervals, whose lost work varies
most); 0.005 leaves room for the first-order formulas' own error at short intervals."""


def plain(kinds=(IN_PLACE,), interval=300.0, blocking=0.0, write=None, restart=300.0,
          spares=0, repair=3_600.0, horizon=DAY, crash=0.0, hang=0.0) -> Setting:
    return Setting(horizon_s=horizon,
                   cadence=Cadence(interval, blocking, blocking if write is None else write),
                   restart_s=restart, repair_s=repair, spares=spares, crash_detection_s=crash,
                   hang_detection_s=hang, kinds=tuple(kinds))


def mean_ettr(one: Setting, mtbf: float, seeds: int = 10) -> float:
    return statistics.fmean(simulate(one, incidents([1 / mtbf], 0.0, one.horizon_s, seed)).ettr
                            for seed in range(seeds))


# -- against the closed forms ------------------------------------------------------------

MTBF = 11_137.0  # Llama 3's rate on 2,048 nodes: one unexpected interruption per 3.09 h


@pytest.mark.parametrize("interval", [300.0, 3_600.0])
def test_in_place_failures_match_the_renewal_expectation(interval):
    one = plain(interval=interval, horizon=540 * DAY)
    assert mean_ettr(one, MTBF) == pytest.approx(renewal_ettr(MTBF, 300.0, interval),
                                                 abs=FORMULA_TOLERANCE)


def test_short_intervals_match_the_first_order_formula():
    # reliability notes §4: E[ETTR] ~ 1 / (1 + N r_f (u0 + q + dt / 2)), with q = 0 here.
    one = plain(interval=300.0, horizon=540 * DAY)
    assert mean_ettr(one, MTBF) == pytest.approx(first_order_ettr(MTBF, 300.0, 300.0),
                                                 abs=FORMULA_TOLERANCE)


def test_a_blocking_save_at_dalys_interval_matches_dalys_overhead():
    cost = 10.0
    interval = best_interval_s(cost, MTBF)
    one = plain(interval=interval, blocking=cost, horizon=540 * DAY)
    expected = 1 - expected_overhead(cost, interval, MTBF, 300.0)
    assert mean_ettr(one, MTBF) == pytest.approx(expected, abs=FORMULA_TOLERANCE)


# -- accounting ----------------------------------------------------------------------------

def test_same_seed_same_run_and_another_seed_another():
    one = plain(kinds=(NODE, IN_PLACE), spares=1, horizon=20 * DAY)
    first = incidents([1 / MTBF, 1 / MTBF], 1 / DAY, one.horizon_s, seed=7)
    assert first == incidents([1 / MTBF, 1 / MTBF], 1 / DAY, one.horizon_s, seed=7)
    assert first != incidents([1 / MTBF, 1 / MTBF], 1 / DAY, one.horizon_s, seed=8)
    assert simulate(one, first).parts == simulate(one, first).parts


@settings(derandomize=True, max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), spares=st.integers(0, 3),
       interval=st.floats(20.0, 5_000.0), blocking=st.floats(0.0, 30.0),
       tail=st.floats(0.0, 20.0), restart=st.floats(0.0, 1_200.0),
       repair=st.floats(60.0, 20_000.0), mtbf=st.floats(600.0, 50_000.0))
def test_every_second_lands_in_exactly_one_part(seed, spares, interval, blocking, tail,
                                                restart, repair, mtbf):
    one = plain(kinds=(NODE, IN_PLACE, HANG), interval=interval, blocking=blocking,
                write=blocking + min(tail, interval), restart=restart, spares=spares,
                repair=repair, horizon=5 * DAY, crash=13.0, hang=600.0)
    events = incidents([1 / mtbf] * 3, 2 / DAY, one.horizon_s, seed)
    outcome = simulate(one, events)
    assert all(seconds >= -1e-6 for seconds in outcome.parts.values())
    assert sum(outcome.fractions().values()) == pytest.approx(1.0, abs=1e-6)
    assert outcome.wall_s == pytest.approx(one.horizon_s, rel=1e-9)


def test_a_failure_loses_the_work_since_the_last_durable_save():
    one = plain(interval=100.0, blocking=10.0, restart=50.0, horizon=1_000.0)
    outcome = simulate(one, [(250.0, 0)])  # two saves done (at 110, 220), 30 s of work since
    assert outcome.parts["lost_work"] == pytest.approx(30.0)
    assert outcome.parts["restart"] == pytest.approx(50.0)


def test_an_async_save_not_yet_written_does_not_count():
    # Saves block 1 s and are durable 60 s after the snapshot: the one taken at 200 s is not
    # durable at 230 s, so the failure loses back to the save taken at 100 s.
    one = plain(interval=100.0, blocking=1.0, write=60.0, restart=50.0, horizon=1_000.0)
    outcome = simulate(one, [(230.0, 0)])
    assert outcome.parts["lost_work"] == pytest.approx(230.0 - 2.0 - 100.0)


def test_a_planned_stop_saves_first_and_loses_nothing():
    one = plain(interval=100.0, blocking=10.0, restart=50.0, horizon=1_000.0)
    outcome = simulate(one, [(250.0, PLANNED)])
    assert outcome.parts["lost_work"] == 0.0
    assert outcome.parts["planned"] == pytest.approx(10.0 + 50.0)
    assert outcome.planned == 1


def test_a_hang_costs_its_timeout_and_a_crash_its_detection():
    one = plain(kinds=(HANG, IN_PLACE), crash=13.0, hang=600.0, horizon=DAY)
    outcome = simulate(one, [(1_000.0, 0), (50_000.0, 1)])
    assert outcome.parts["detection"] == pytest.approx(600.0 + 13.0)


def test_a_node_fault_without_a_free_spare_waits_for_the_repair():
    one = plain(kinds=(NODE,), spares=1, repair=7_200.0, restart=60.0, horizon=DAY)
    outcome = simulate(one, [(1_000.0, 0), (2_000.0, 0)])
    # the first fault takes the spare; the second waits until the first node is back (8,200 s)
    assert outcome.waits == 1
    assert outcome.parts["waiting_for_repair"] == pytest.approx(8_200.0 - 2_000.0)


# -- the rules -----------------------------------------------------------------------------

def test_spares_help_on_the_same_failures():
    scenario = Scenario(days=10, repeats=4)
    rules = suan_rules(scenario, JOB)
    lists = failure_lists(scenario)
    with_spares = [simulate(setting(scenario, JOB, rules), events) for events in lists]
    without = [simulate(setting(scenario, JOB, replace(rules, spares=0)), events)
               for events in lists]
    assert rules.spares > 0
    for kept, bare in zip(with_spares, without, strict=True):
        assert kept.ettr > bare.ettr
        assert kept.parts["waiting_for_repair"] < bare.parts["waiting_for_repair"]


def test_default_spares_are_the_fewest_that_rarely_run_out():
    scenario = Scenario()
    spares = default_spares(scenario)
    mean = node_replacing_per_gpu_day() * scenario.gpus / DAY * scenario.repair_s

    def shortfall(count: int) -> float:  # P(Poisson(mean) >= count)
        return 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(count))

    assert shortfall(spares) <= 0.01 < shortfall(spares - 1)


def test_suan_checkpoints_more_often_than_hourly_at_dalys_interval():
    scenario = Scenario()
    suan, base = suan_rules(scenario, JOB), baseline_rules(scenario, JOB)
    assert suan.interval_s < base.interval_s
    steps = suan.interval_s / JOB.step_time_s
    assert steps == pytest.approx(round(steps))
    assert base.spares == 0 and suan.hang_detection_s < base.hang_detection_s


def test_the_failure_mix_is_table_5():
    assert sum(kind.count for kind in TABLE_5) == 419
    assert sum(kind.count for kind in TABLE_5 if kind.category == "GPU") == 268


# -- the command ---------------------------------------------------------------------------

def options(**changes) -> dict:
    base = {"gpus": 16_384, "days": 54.0, "restart": "5m", "storage": "2TB/s",
            "async_checkpoint": False, "repair": "4h", "spares": None, "seed": 0, "repeats": 3}
    return base | changes


@pytest.mark.parametrize(("change", "field"), [
    ({"spares": -1}, "--spares"), ({"gpus": 12}, "--gpus"), ({"days": 0}, "--days"),
    ({"restart": "soon"}, "--restart-overhead"), ({"storage": "fast"}, "--storage-bandwidth"),
    ({"storage": "-2TB/s"}, "--storage-bandwidth"), ({"repair": "0s"}, "--repair-time"),
    ({"repeats": 0}, "--repeats")])
def test_bad_options_name_the_option(change, field):
    with pytest.raises(SpecError) as caught:
        scenario_from_options(**options(**change))
    assert [problem.path for problem in caught.value.problems] == [field]


def test_bandwidths_read_with_and_without_units():
    assert parse_bandwidth_gbs("2TB/s") == 2_000.0
    assert parse_bandwidth_gbs("500 GB/s") == 500.0
    assert parse_bandwidth_gbs("800") == 800.0


def test_the_command_refuses_bad_input_without_a_traceback():
    result = CliRunner().invoke(cli, ["sim", "failures", "--spares", "-2"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SpecError) and "--spares" in str(result.exception)


def test_the_command_writes_every_key(tmp_path):
    out, plot = tmp_path / "ettr.json", tmp_path / "ettr.png"
    result = CliRunner().invoke(cli, ["sim", "failures", "--days", "4", "--repeats", "2",
                                      "--json", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert {"ettr", "breakdown", "baseline_ettr", "baseline_breakdown", "inputs",
            "sensitivity", "rules", "ablation", "closed_forms"} <= set(figures)
    for key in ("breakdown", "baseline_breakdown"):
        assert sum(figures[key].values()) == pytest.approx(1.0, abs=1e-6)
    assert [row["restart_overhead_min"] for row in figures["sensitivity"]] == [2, 4, 6, 8, 10]
    assert all("source" in entry for entry in figures["inputs"].values())
    assert figures["job"]["gpus"] == 16_384 and figures["job"]["step_time_s"] > 0
    assert plot.stat().st_size > 0 and "ETTR" in result.output


def test_a_study_is_repeatable():
    scenario = Scenario(days=3, repeats=2)
    first, second = study(scenario, JOB), study(scenario, JOB)
    first.pop("cpu_seconds"), second.pop("cpu_seconds")
    assert first == second


def test_a_gpu_count_the_planner_cannot_split_names_the_option():
    with pytest.raises(SpecError) as caught:
        study(Scenario(gpus=8, days=1, repeats=1))
    assert [problem.path for problem in caught.value.problems] == ["--gpus"]
