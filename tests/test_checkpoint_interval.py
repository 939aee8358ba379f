"""The checkpoint interval rule against the published worked examples and its own optimum."""

import math

import pytest

from suan.checkpoint_interval import (
    best_interval_s,
    expected_overhead,
    job_mtbf_s,
    young_interval_s,
)

HOUR = 3600.0


@pytest.mark.parametrize(
    ("mtbf_h", "cost_s", "young_min", "daly_min"),
    [(3.09, 10, 7.9, 7.7), (3.09, 60, 19.3, 18.3), (1.8, 10, 6.0, 5.8), (0.25, 10, 2.2, 2.1)],
)
def test_intervals_match_the_worked_examples(mtbf_h, cost_s, young_min, daly_min):
    assert young_interval_s(cost_s, mtbf_h * HOUR) / 60 == pytest.approx(young_min, abs=0.06)
    assert best_interval_s(cost_s, mtbf_h * HOUR) / 60 == pytest.approx(daly_min, abs=0.06)


def test_the_rule_lands_near_the_minimum_of_the_overhead():
    cost, mtbf = 30.0, 2 * HOUR
    best = best_interval_s(cost, mtbf)
    grid = [best * f for f in (0.5, 0.8, 1.25, 2.0)]
    assert all(expected_overhead(cost, best, mtbf) < expected_overhead(cost, t, mtbf) for t in grid)


def test_a_checkpoint_costlier_than_two_mtbfs_gets_the_mtbf():
    assert best_interval_s(5 * HOUR, HOUR) == HOUR


def test_job_mtbf_follows_the_node_count():
    # Llama 3's implied rate, 3.79 per 1,000 node-days, over 2,048 nodes: about 3.1 hours.
    assert job_mtbf_s(3.79e-3, 2048) / HOUR == pytest.approx(3.09, abs=0.02)


@pytest.mark.parametrize(("cost", "mtbf"), [(-1, 10), (1, 0), (math.inf, 10), (1, math.nan)])
def test_nonsense_inputs_are_refused(cost, mtbf):
    with pytest.raises(ValueError):
        best_interval_s(cost, mtbf)
