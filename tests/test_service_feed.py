"""The one feed into the service-class learner: attained service over all runs, finished jobs
observed, jobs that have run and not finished censored, series told of their running members."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sched_helpers import job, running

from suan.sched.service import MIN_SAMPLES, ServiceHistory, kaplan_meier
from suan.sched.service_feed import record_finish, record_stop, relearn


def test_a_finish_records_the_service_of_every_run():
    history = ServiceHistory()
    finished = replace(job("a", devices=4), queue="team", series="s")
    record_finish(history, finished, 3 * 3600.0)
    assert history.samples["team"] == [3 * 3600.0]
    assert history.series["team", "s"].finished == [3 * 3600.0]


def test_unfinished_jobs_are_censored_needs_counting_their_earlier_runs():
    history = ServiceHistory()
    for _ in range(MIN_SAMPLES):
        record_finish(history, replace(job("f"), queue="team"), 3600.0)
    # Running for 100 s on 2 devices after 5,000 device-seconds of earlier runs: 5,200.
    long_one = replace(job("r", devices=2), queue="team", attained_service_s=5000.0)
    stopped = replace(job("p"), queue="team", attained_service_s=9000.0)
    never_ran = replace(job("n"), queue="team")
    other_queue = replace(job("o"), queue="else", attained_service_s=50.0)
    changed = relearn(history, 1100.0, [running(long_one, ("n0", (0, 1)), start=1000.0)],
                      [stopped, never_ran, other_queue])
    assert changed
    needs, mass = history.distributions["team"]
    expected_needs, expected_mass = kaplan_meier([3600.0] * MIN_SAMPLES, [5200.0, 9000.0])
    assert np.allclose(needs, expected_needs) and np.allclose(mass, expected_mass)
    # The two long jobs still running keep mass beyond the hour that every finish needed.
    assert needs.max() == 9000.0 and mass[-1] > 0


def test_censoring_changes_what_the_queue_learns():
    def learned(unfinished: list[float]):  # type: ignore[no-untyped-def]
        history = ServiceHistory()
        for _ in range(MIN_SAMPLES):
            record_finish(history, replace(job("f"), queue="team"), 600.0)
        stopped = [replace(job(f"s{i}"), queue="team", attained_service_s=value)
                   for i, value in enumerate(unfinished)]
        relearn(history, 0.0, [], stopped)
        return history.classes

    alone, censored = learned([]), learned([20_000.0] * 30)
    # With only the finishes, a job past 10 minutes is not expected to end; with 30 jobs
    # still going at 20,000, it is a long job like them, and ranked as one.
    assert alone.level("team", 1200.0) != censored.level("team", 1200.0)


def test_nothing_is_relearned_before_a_queue_is_due():
    history = ServiceHistory()
    record_finish(history, replace(job("f"), queue="team"), 600.0)
    assert not relearn(history, 0.0, [], [replace(job("s"), queue="team",
                                                  attained_service_s=5.0)])
    assert "team" not in history.distributions


def test_series_hear_of_members_as_they_run_and_when_they_stop():
    history = ServiceHistory()
    probe = replace(job("a"), queue="team", series="sweep", attained_service_s=100.0)
    relearn(history, 50.0, [running(probe, ("n0", (0,)), start=0.0)], [])
    assert history.series["team", "sweep"].outlived == 150.0
    record_stop(history, replace(job("b"), queue="team", series="other"), 7000.0)
    assert history.series["team", "other"].outlived == 7000.0
    # a waiting member has told its series when it stopped: relearning does not again
    history.series.clear()
    stopped = replace(job("c"), queue="team", series="other", attained_service_s=7000.0)
    relearn(history, 60.0, [], [stopped])
    assert ("team", "other") not in history.series
