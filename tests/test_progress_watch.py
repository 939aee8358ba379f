"""Progress read from ranks' logs, straggler and hang rules, and the job spec's health field.

The reader runs over real log files read through the local executor's `logs()` and a real
store; the rules over step times generated with seeded noise."""

from __future__ import annotations

import io
import json
import random

import pytest
from control_helpers import job_yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from suan.control.auth import Identity
from suan.control.hangs import find_hang
from suan.control.lifecycle import STEADY_RUN_S, gang_restart_delay_s
from suan.control.models import ProgressRow
from suan.control.progress_reader import (
    BYTES_PER_RANK,
    FORGET_AFTER_S,
    KEEP_RECENT,
    LONGEST_LINE,
    READ_EVERY_S,
    THIN_EVERY,
    GangProgress,
    ProgressReader,
    RankProgress,
)
from suan.control.store import Store, database_url
from suan.control.stragglers import RATIO, find_stragglers
from suan.control.submit import submit
from suan.errors import SpecError
from suan.exec.files import JobFiles
from suan.exec.local import LocalExecutor
from suan.exec.local_node import local_node
from suan.jobs.spec import job_to_document, parse_job, parse_job_document
from suan.progress import Progress, line
from suan.progress_timer import StepTimer


# --- reading ---------------------------------------------------------------------------------
class Logs:
    """A store with one job and the job's rank logs, written by the test and read through the
    local executor's `logs()`."""

    def __init__(self, home):
        self.store = Store.open(database_url(home))
        with self.store.session() as session:
            found = submit(session, Identity("admin", admin=True), job_yaml("p", ranks=2),
                           None, home)
        self.job_id = found.jobs[0]["id"]
        node, _ = local_node("8xH100")
        self.executor = LocalExecutor(home, node=node)
        self.files = JobFiles(home)
        self.files.log_path(self.job_id, 0).parent.mkdir(parents=True, exist_ok=True)
        self.now = 1000.0

    def write(self, rank: int, text: str) -> None:
        with open(self.files.log_path(self.job_id, rank), "a") as handle:
            handle.write(text)

    def read(self, reader: ProgressReader, attempt: int = 1, ranks: int = 1) -> GangProgress:
        self.now += READ_EVERY_S
        with self.store.session() as session:
            return reader.read(session, [(self.job_id, attempt, ranks)], self.now)[self.job_id]

    def stored(self) -> list[tuple[int, int, int]]:
        with self.store.session() as session:
            rows = session.scalars(select(ProgressRow).order_by(ProgressRow.id))
            return [(r.attempt, r.rank, r.step) for r in rows]


def header(attempt: int, rank: int = 0) -> str:
    return f"--- suan: attempt {attempt}, rank {rank}, vm, 2026-01-01T00:00:00 ---\n"


def progress(step: int, **fields) -> str:
    return line(Progress(step, **fields)) + "\n"


@pytest.fixture
def logs(tmp_path):
    return Logs(tmp_path)


def test_records_go_to_the_attempt_of_the_last_header_and_a_partial_line_waits(logs):
    reader = ProgressReader(logs.executor)
    whole = progress(3, step_time_s=0.5)
    logs.write(0, header(1) + "loss 1.0\n" + progress(1, step_time_s=0.5) + progress(2)
               + whole[:20])
    gang = logs.read(reader)
    assert logs.stored() == [(1, 0, 1), (1, 0, 2)]
    assert gang.ranks[0].step == 2 and list(gang.ranks[0].step_times) == [0.5]
    logs.write(0, whole[20:] + header(2) + progress(1, step_time_s=0.7))
    gang = logs.read(reader, attempt=2)
    assert logs.stored()[2:] == [(1, 0, 3), (2, 0, 1)]
    assert gang.attempt == 2 and gang.ranks[0].step == 1
    assert list(gang.ranks[0].step_times) == [0.7]  # attempt 1's times are not attempt 2's


def test_a_reader_after_a_server_restart_stores_no_record_twice(logs):
    logs.write(0, header(1) + progress(1) + progress(2))
    logs.read(ProgressReader(logs.executor))
    again = ProgressReader(logs.executor)  # a new server reads the log from its start
    gang = logs.read(again)
    assert logs.stored() == [(1, 0, 1), (1, 0, 2)]
    assert gang.ranks == {}  # nothing new seen: no progress, so no hang clock from old records
    logs.write(0, progress(3))
    assert logs.read(again).ranks[0].step == 3 and len(logs.stored()) == 3


def test_a_job_missed_by_a_pass_keeps_its_progress_and_a_long_gone_one_is_forgotten(logs):
    reader = ProgressReader(logs.executor)
    logs.write(0, header(1) + progress(1))
    seen_at = logs.read(reader).ranks[0].seen_at
    with logs.store.session() as session:
        reader.read(session, [], logs.now + 1)  # a pass whose poll missed the job
    assert logs.read(reader).ranks[0].seen_at == seen_at  # the quiet rank's clock runs on
    with logs.store.session() as session:
        reader.read(session, [], logs.now + FORGET_AFTER_S + 1)
    assert logs.job_id not in reader.gangs


def test_a_log_is_read_at_most_a_bounded_amount_a_pass_and_long_lines_are_dropped(logs):
    reader = ProgressReader(logs.executor)
    chatter = ("x" * 99 + "\n") * (2 * BYTES_PER_RANK // 100)
    long_line = json.dumps({"suan": "progress", "step": 1, "pad": "y" * LONGEST_LINE}) + "\n"
    logs.write(0, header(1) + chatter + long_line + progress(2))
    logs.read(reader)
    assert logs.stored() == []  # BYTES_PER_RANK read: the record is further on
    with logs.store.session() as session:  # behind: read again at once, BEHIND_BYTES at a time
        reader.read(session, [(logs.job_id, 1, 1)], logs.now)
    assert logs.stored() == [(1, 0, 2)]


def test_a_reader_reads_a_job_again_only_after_read_every_s(logs):
    reader = ProgressReader(logs.executor)
    logs.write(0, header(1) + progress(1))
    logs.read(reader)
    logs.write(0, progress(2))
    with logs.store.session() as session:
        soon = reader.read(session, [(logs.job_id, 1, 1)], logs.now + READ_EVERY_S / 2)
    assert soon[logs.job_id].ranks[0].step == 1
    assert logs.read(reader).ranks[0].step == 2


def test_old_records_are_thinned_to_every_hundredth_step_and_checkpoints(logs):
    reader = ProgressReader(logs.executor)
    last = 3 * KEEP_RECENT + 50
    text = header(1) + "".join(
        progress(step, checkpoint_s=2.0 if step == 57 else None) for step in range(1, last + 1)
    )
    logs.write(0, text)
    while len({step for _, _, step in logs.stored()}) < 1 or max(
            step for _, _, step in logs.stored()) < last:
        logs.read(reader)
    kept = {step for _, _, step in logs.stored()}
    assert set(range(last - KEEP_RECENT + 1, last + 1)) <= kept
    thinned = {step for step in kept if step <= last - 2 * KEEP_RECENT}
    assert thinned == {s for s in range(1, last - 2 * KEEP_RECENT + 1)
                       if s % THIN_EVERY == 0} | {57}


# --- the SDK's step timer --------------------------------------------------------------------
def test_the_step_timer_reports_steps_tokens_and_the_checkpoint_on_the_next_line():
    out = io.StringIO()
    timer = StepTimer(start_step=10, tokens_per_step=100, stream=out)
    with timer.step():
        pass
    with timer.checkpoint():
        pass
    with timer.step():
        pass
    first, second = (json.loads(text) for text in out.getvalue().splitlines())
    assert (first["step"], first["tokens"], second["step"], second["tokens"]) == (11, 1100, 12,
                                                                                   1200)
    assert "checkpoint_s" not in first and second["checkpoint_s"] >= 0
    assert first["step_time_s"] >= 0


# --- stragglers ------------------------------------------------------------------------------
def run(ranks: int, steps: int, seed: int, jitter: float, slow_rank: int | None = None,
        slow_from: int = 0) -> list[list]:
    """The stragglers found after each step of a gang whose step times are lognormal around
    1 s with `jitter`, with a 2 % chance of a 3x spike (a collection, a save), and rank
    `slow_rank` slowed 2x from step `slow_from` on."""
    noise = random.Random(seed)
    times: dict[int, list[float]] = {rank: [] for rank in range(ranks)}
    found = []
    for step in range(steps):
        for rank in range(ranks):
            value = noise.lognormvariate(0.0, jitter) * (3 if noise.random() < 0.02 else 1)
            times[rank].append(value * (2 if rank == slow_rank and step >= slow_from else 1))
        found.append(find_stragglers(times))
    return found


@settings(max_examples=40, deadline=None, derandomize=True)
@given(ranks=st.integers(2, 16), seed=st.integers(0, 2**32), jitter=st.floats(0.01, 0.1))
def test_a_healthy_500_step_run_with_ordinary_jitter_raises_no_flag(ranks, seed, jitter):
    assert not any(run(ranks, 500, seed, jitter))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(data=st.data(), ranks=st.integers(2, 16), seed=st.integers(0, 2**32),
       jitter=st.floats(0.01, 0.1), slow_from=st.integers(0, 200))
def test_a_rank_slowed_2x_is_flagged_within_20_steps_and_no_other(data, ranks, seed, jitter,
                                                                    slow_from):
    slow = data.draw(st.integers(0, ranks - 1))
    found = run(ranks, slow_from + 20, seed, jitter, slow, slow_from)
    assert not any(found[:slow_from])
    flagged = [flags for flags in found[slow_from:] if flags]
    assert flagged and all([f.rank for f in flags] == [slow] for flags in flagged)
    assert flagged[0][0].ratio >= RATIO


def test_a_straggler_message_names_the_rank_its_time_and_the_gang_median():
    [flag] = find_stragglers({0: [1.0] * 10, 1: [1.0] * 10, 2: [2.5] * 10})
    assert flag.message() == "rank 2 step time 2.5s is 2.50x the gang median 1s"


def test_a_single_rank_or_too_few_steps_are_not_judged():
    assert find_stragglers({0: [9.0] * 10}) == []
    assert find_stragglers({0: [1.0] * 5, 1: [9.0] * 5}) == []


# --- hangs -----------------------------------------------------------------------------------
def gang(**ranks: tuple[int, float]) -> GangProgress:
    result = GangProgress(1, watched_since=100.0)
    result.ranks = {int(k[1:]): RankProgress(step, seen) for k, (step, seen) in ranks.items()}
    return result


def test_a_rank_quiet_for_the_timeout_is_a_hang_named_by_its_last_step():
    hung = find_hang(gang(r0=(40, 200.0), r1=(12, 150.0)), {0, 1}, 30.0, 205.0)
    assert (hung.rank, hung.step, hung.quiet_s) == (1, 12, 55.0)
    assert hung.message() == "no progress for 55s since step 12; restarting the gang"


def test_no_hang_without_a_timeout_for_ranks_that_ended_or_before_the_watch_began():
    quiet = gang(r0=(40, 100.0), r1=(12, 50.0))
    assert find_hang(quiet, {0, 1}, None, 1000.0) is None
    assert find_hang(quiet, {0, 1}, 30.0, 120.0) is None  # watched from 100 only
    assert find_hang(gang(r0=(4, 100.0)), set(), 30.0, 1000.0) is None  # rank 0 exited
    assert find_hang(GangProgress(1, 0.0), {0, 1}, 1.0, 1000.0) is None  # nothing reported


# --- restart backoff -------------------------------------------------------------------------
def test_a_restart_after_a_steady_run_waits_only_the_base_backoff():
    assert gang_restart_delay_s(5, STEADY_RUN_S, 2.0) == 2.0
    assert gang_restart_delay_s(1, 1.0, 2.0) == 2.0
    assert gang_restart_delay_s(3, 1.0, 2.0) == 8.0


# --- the spec field --------------------------------------------------------------------------
def document(health: object) -> dict:
    return {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": "h"},
            "spec": {"replicas": 1, "command": ["x"], "health": health}}


def test_the_no_progress_timeout_is_read_and_written_back():
    job = parse_job(document({"noProgressTimeout": "10m"}))
    assert job.no_progress_timeout_s == 600.0
    assert parse_job(job_to_document(job)) == job
    assert parse_job(document({})).no_progress_timeout_s is None


@pytest.mark.parametrize(("health", "words"), [
    ({"noProgressTimeout": "soon"}, "spec.health.noProgressTimeout: 'soon' is not a duration"),
    ({"noProgressTimeout": 0}, "spec.health.noProgressTimeout"),
    ({"noProgresTimeout": "1m"}, "did you mean 'noProgressTimeout'"),
])
def test_a_bad_no_progress_timeout_names_the_field(health, words):
    with pytest.raises(SpecError, match="health") as caught:
        parse_job_document(document(health))
    assert words in str(caught.value)


# --- which rank failed -----------------------------------------------------------------------
def test_the_failed_rank_is_the_one_sigterm_did_not_end():
    from suan.exec import JobStatus, RankStatus

    stopped_by_engine = RankStatus(0, running=False, exit_code=143)
    killed = RankStatus(1, running=False, exit_code=137)
    assert JobStatus("j", 1, (stopped_by_engine, killed)).first_failure == killed
    assert JobStatus("j", 1, (stopped_by_engine,)).first_failure == stopped_by_engine
    vanished = RankStatus(2, running=False, exit_code=None)
    assert JobStatus("j", 1, (stopped_by_engine, vanished)).first_failure == vanished
    assert JobStatus("j", 1, (RankStatus(0, running=True),)).first_failure is None


# --- the server's default --------------------------------------------------------------------
def test_the_servers_default_timeout_comes_from_its_config_file_and_is_off_without(tmp_path):
    from suan.control.server import options_from_file

    path = tmp_path / "suan.yaml"
    path.write_text("health: {noProgressTimeout: 30m}\n")
    assert options_from_file(path, home=tmp_path).no_progress_timeout_s == 1800.0
    overridden = options_from_file(path, home=tmp_path, no_progress_timeout_s=60.0)
    assert overridden.no_progress_timeout_s == 60.0
    path.write_text("engine: local\n")
    assert options_from_file(path, home=tmp_path).no_progress_timeout_s is None
    path.write_text("health: {noProgressTimeout: never}\n")
    with pytest.raises(SpecError, match=r"health\.noProgressTimeout: 'never' is not a duration"):
        options_from_file(path, home=tmp_path)


def test_a_log_that_cannot_be_read_is_read_again_later_and_fails_nothing(logs):
    reader = ProgressReader(logs.executor)
    logs.write(0, header(1) + progress(1))
    path = logs.files.log_path(logs.job_id, 0)
    path.rename(path.with_suffix(".away"))
    path.mkdir()  # a directory where the log was: open() fails with IsADirectoryError
    assert logs.read(reader).ranks == {}
    path.rmdir()
    path.with_suffix(".away").rename(path)
    assert logs.read(reader).ranks[0].step == 1
