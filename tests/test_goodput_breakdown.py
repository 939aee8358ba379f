"""The goodput breakdown of a job's wall time: each bucket's rule on hand-built timelines, and
(Hypothesis, derandomised) that the buckets of any timeline sum to its wall time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suan.goodput.breakdown import Breakdown, breakdown
from suan.goodput.program import gang_tokens_per_s, mfu
from suan.goodput.timeline import Mark, Record, Timeline


def steps(attempt: int, start: float, count: int, every: float = 1.0, ranks: int = 1,
          checkpoint_at: tuple[int, ...] = (), slow_rank: int | None = None) -> list[Record]:
    """Progress records of `ranks` ranks, one step every `every` seconds after `start`."""
    out = []
    for step in range(1, count + 1):
        for rank in range(ranks):
            step_time = every * (1.5 if rank == slow_rank else 1.0)
            out.append(Record(attempt, rank, step, start + step * every, tokens=step * 100,
                              step_time_s=step_time,
                              checkpoint_s=0.5 if step in checkpoint_at else None))
    return out


def test_a_clean_run_is_queue_wait_startup_and_productive_time() -> None:
    marks = (Mark(0, "submitted"), Mark(10, "scheduled"), Mark(12, "running"),
             Mark(40, "succeeded"))
    timeline = Timeline(0, 40, 8, marks, tuple(steps(1, 15, 25)))
    parts = breakdown(timeline, now=100)
    assert parts.queue_wait == pytest.approx(10)
    assert parts.restart == pytest.approx(6)  # scheduled at 10, first progress at 16
    assert parts.productive == pytest.approx(24)
    assert parts.wall == pytest.approx(40)
    assert parts.scheduling_goodput() == pytest.approx(30 / 40)
    assert parts.runtime_goodput() == pytest.approx(24 / 30)


def test_a_failure_loses_the_work_since_the_last_checkpoint_and_pays_a_restart() -> None:
    marks = (Mark(0, "submitted"), Mark(0, "scheduled"), Mark(1, "running"),
             Mark(22.5, "rank-failed", "rank 0 exited with code 137"),
             Mark(23, "restarting", "restart 1/3 in 2.0s after: rank 0 exited with code 137"),
             Mark(30, "scheduled"), Mark(31, "running"), Mark(50, "succeeded"))
    records = steps(1, 1, 20, checkpoint_at=(10,)) + steps(2, 32, 18)
    parts = breakdown(Timeline(0, 50, 4, marks, tuple(records)), now=60)
    # attempt 1: first progress at 2, checkpoint saved at 11, last progress 21, failure 22.5
    assert parts.lost == pytest.approx(22.5 - 11)
    assert parts.checkpoint == pytest.approx(0.5)
    # restart: 0->2 startup, 22.5->23 teardown, 2 s backoff, 30->33 startup of attempt 2
    assert parts.restart == pytest.approx(2 + 0.5 + 2 + 3)
    assert parts.queue_wait == pytest.approx(30 - 25)
    assert parts.wall == pytest.approx(50)


def test_a_hang_is_the_time_from_the_last_progress_to_the_hang_event() -> None:
    marks = (Mark(0, "scheduled"), Mark(0, "running"),
             Mark(40, "hang", "no progress for 30s since step 10; restarting the gang"),
             Mark(41, "restarting", "restart 1/3 in 1.0s after: hang"),
             Mark(42, "scheduled"), Mark(50, "succeeded"))
    records = steps(1, 0, 10, checkpoint_at=(10,)) + steps(2, 43, 7)
    parts = breakdown(Timeline(0, 50, 1, marks, tuple(records)), now=50)
    assert parts.hang == pytest.approx(30)
    assert parts.lost == pytest.approx(0)
    assert parts.wall == pytest.approx(50)


def test_straggler_time_is_the_slowest_rank_less_the_gang_median() -> None:
    marks = (Mark(0, "scheduled"), Mark(110, "succeeded"))
    records = steps(1, 0, 100, ranks=3, slow_rank=2)
    parts = breakdown(Timeline(0, 110, 3, marks, tuple(records)), now=110)
    assert parts.straggler == pytest.approx(99 * 0.5)  # steps 2..100 after the first record
    assert parts.wall == pytest.approx(110)


def test_a_kept_step_of_a_thinned_stretch_stands_for_the_steps_before_it() -> None:
    records = [r for r in steps(1, 0, 300, ranks=2, slow_rank=1)
               if r.step <= 100 or r.step % 100 == 0]
    parts = breakdown(Timeline(0, 310, 2, (Mark(0, "scheduled"), Mark(310, "succeeded")),
                               tuple(records)), now=310)
    assert parts.straggler == pytest.approx(299 * 0.25)  # median of 1 and 1.5 is 1.25


def test_steps_that_left_no_record_before_the_first_count_as_progress_not_start_up() -> None:
    marks = (Mark(0, "scheduled"), Mark(2, "running"), Mark(400, "succeeded"))
    kept = tuple(r for r in steps(1, 5, 390) if r.step % 100 == 0 or r.step > 290)
    parts = breakdown(Timeline(0, 400, 1, marks, kept), now=400)
    # step 100, the first kept record, at 105 stands for steps 2-100 too: step 1 came at 6,
    # as when every record is kept
    assert parts.restart == pytest.approx(6)
    assert parts.productive == pytest.approx(394)


def test_a_preempted_attempt_loses_its_work_since_the_checkpoint_and_waits_in_the_queue(
) -> None:
    marks = (Mark(0, "scheduled"), Mark(12, "straggler", "rank 0 step time 2s is 2x ..."),
             Mark(25.5, "preempting", "preempted for b"), Mark(27, "preempted"),
             Mark(40, "scheduled"), Mark(60, "succeeded"))
    records = steps(1, 0, 25, checkpoint_at=(20,)) + steps(2, 40, 19)
    parts = breakdown(Timeline(0, 60, 8, marks, tuple(records)), now=60)
    assert parts.lost == pytest.approx(25.5 - 20), "a straggler flag is not a stop"
    assert parts.queue_wait == pytest.approx(13)
    assert parts.restart == pytest.approx(1 + 1.5 + 1)
    assert parts.wall == pytest.approx(60)


def test_holds_count_as_the_owners_wait_not_the_queues() -> None:
    marks = (Mark(0, "submitted"), Mark(100, "scheduled"), Mark(200, "succeeded"))
    parts = breakdown(Timeline(0, 200, 1, marks, (), user_waits=((0, 60),)), now=200)
    assert parts.user_wait == pytest.approx(60)
    assert parts.queue_wait == pytest.approx(40)
    assert parts.scheduling_goodput() == pytest.approx(100 / 140)


def test_a_job_without_progress_counts_its_running_time_as_productive_unknown() -> None:
    marks = (Mark(0, "scheduled"), Mark(3, "running"), Mark(20, "succeeded"))
    parts = breakdown(Timeline(0, 20, 1, marks, ()), now=20)
    assert not parts.reports_progress
    assert parts.productive_unknown == pytest.approx(17)
    assert parts.restart == pytest.approx(3)
    assert parts.runtime_goodput() is None


def test_a_live_job_is_measured_up_to_now() -> None:
    marks = (Mark(0, "submitted"), Mark(5, "scheduled"), Mark(6, "running"))
    parts = breakdown(Timeline(0, None, 2, marks, tuple(steps(1, 6, 10))), now=30)
    assert parts.wall == pytest.approx(30)
    assert parts.productive == pytest.approx(30 - 7)


def test_gang_throughput_and_mfu() -> None:
    records = steps(1, 0, 11, ranks=2)  # each rank 100 tokens per 1 s step
    rate = gang_tokens_per_s(records)
    assert rate == pytest.approx(200)
    assert mfu(rate, 6e9, 2, 100) == pytest.approx(200 * 6e9 / 2e14)
    assert gang_tokens_per_s([Record(1, 0, 1, 1.0)]) is None


KINDS = ["scheduled", "running", "rank-failed", "preempting", "stopping", "hang", "drain",
         "restarting", "requeued", "preempted", "pending", "straggler", "engine"]


@st.composite
def timelines(draw: st.DrawFn) -> tuple[Timeline, float]:
    times = draw(st.lists(st.floats(0, 1000), min_size=0, max_size=25))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=len(times), max_size=len(times)))
    backoffs = draw(st.lists(st.floats(0, 50), min_size=len(times), max_size=len(times)))
    marks = tuple(
        Mark(t, k, f"restart 1/3 in {b:.1f}s after: x" if k == "restarting" else "")
        for t, k, b in zip(sorted(times), kinds, backoffs, strict=True)
    )
    if draw(st.booleans()):
        marks += (Mark(draw(st.floats(0, 1200)), draw(st.sampled_from(
            ["succeeded", "failed", "cancelled"]))),)
    records = tuple(draw(st.lists(st.builds(
        Record, attempt=st.integers(1, 6), rank=st.integers(0, 3), step=st.integers(0, 50),
        seen_at=st.floats(0, 1200), tokens=st.none() | st.integers(0, 10**6),
        step_time_s=st.none() | st.floats(0, 100), checkpoint_s=st.none() | st.floats(0, 50),
    ), max_size=40)))
    waits = tuple(draw(st.lists(st.tuples(st.floats(0, 1200), st.floats(0, 1200)), max_size=3)))
    end = draw(st.none() | st.floats(0, 1300))
    return Timeline(0.0, end, 4, marks, records, waits), draw(st.floats(0, 1400))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(timelines())
def test_the_buckets_sum_to_the_wall_time(case: tuple[Timeline, float]) -> None:
    timeline, now = case
    parts = breakdown(timeline, now)
    end = timeline.end_time if timeline.end_time is not None else now
    wall = max(end, timeline.submit_time) - timeline.submit_time
    assert all(value >= -1e-9 for value in parts.as_dict().values()), parts
    assert parts.wall == pytest.approx(wall, rel=0.01, abs=1e-6)


def test_bucket_names_are_stable() -> None:
    assert Breakdown.buckets() == (
        "queue_wait", "user_wait", "restart", "lost", "hang", "straggler", "checkpoint",
        "productive", "productive_unknown",
    )
