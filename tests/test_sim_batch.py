"""Replays of batch workloads follow the control plane's rules: time limits stop runs (and
bound backfill), dependencies hold and cancel jobs, array throttles cap running members."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from suan.cli.main import cli
from suan.cluster.generate import cluster_from_shorthand
from suan.jobs.queue import QueueSpec
from suan.sim.metrics import summarise
from suan.sim.runtime import RuntimeModel
from suan.sim.simulator import SimConfig, SimResult, Simulator, simulate
from suan.sim.state import JobState, Status
from suan.sim.traces import read_generic
from suan.sim.workload import TraceJob

HEADER = "job_id,submit_time,duration,num_gpus,time_limit,dependency,array\n"


def replay(tmp_path, rows: str, cluster: str = "1x4xV100", policy: str = "fifo",
           config: SimConfig | None = None) -> tuple[SimResult, dict[str, JobState]]:
    path = tmp_path / "batch.csv"
    path.write_text(HEADER + rows)
    result = simulate(read_generic(path).jobs, cluster_from_shorthand(cluster), policy, config)
    return result, {state.job.name: state for state in result.jobs}


def test_a_chain_runs_in_order_where_the_cluster_could_run_it_at_once(tmp_path):
    result, jobs = replay(tmp_path, (
        "a,0,100,1,,,\n"
        "b,0,50,1,,afterok:a,\n"
        "c,0,30,1,,afterany:b,\n"
    ))
    assert [jobs[n].status for n in "abc"] == [Status.DONE] * 3
    assert (jobs["a"].first_start, jobs["b"].first_start, jobs["c"].first_start) == (
        0.0, 100.0, 150.0)
    assert jobs["c"].end == 180.0
    figures = summarise(result)
    assert figures["mean_dependency_wait_s"] == pytest.approx((100 + 150) / 2)
    assert (figures["timeouts"], figures["dependency_cancelled"]) == (0, 0)


def test_a_held_job_waits_with_the_dependency_code_and_the_control_plane_s_reason(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text(HEADER + "a,0,100,1,,,\nb,0,50,1,,afterok:a,\n")
    simulator = Simulator(read_generic(path).jobs, cluster_from_shorthand("1x4xV100"),
                          SimConfig())
    seen = []

    def watch(done: int, total: int) -> None:
        held = simulator.by_name["b"]
        assert simulator.gate is not None
        seen.append((done, held.status, held.wait_code, simulator.gate.reason(held)))

    simulator.run(watch)
    assert seen[0] == (1, Status.HELD, "dependency", "waits for job a to succeed")


def test_a_timeout_cancels_an_afterok_dependent_and_lets_an_afterany_one_run(tmp_path):
    result, jobs = replay(tmp_path, (
        "a,0,500,2,5m,,\n"
        "ok,0,40,1,,afterok:a,\n"
        "any,0,40,1,,afterany:a,\n"
        "next,0,40,1,,afterok:ok,\n"
    ))
    assert (jobs["a"].status, jobs["a"].end) == (Status.TIMEOUT, 300.0)
    assert jobs["a"].reason == "its run reached its time limit of 5m"
    assert jobs["ok"].status == Status.CANCELLED and jobs["ok"].first_start is None
    assert jobs["ok"].reason == ("its dependency can never be met: job a timeout "
                                 "(afterok: it had to succeed)")
    assert jobs["next"].status == Status.CANCELLED  # its own dependency was cancelled
    assert "job ok cancelled" in jobs["next"].reason
    assert (jobs["any"].status, jobs["any"].first_start) == (Status.DONE, 300.0)
    figures = summarise(result)
    assert (figures["timeouts"], figures["timeout_device_s"]) == (1, 600.0)
    assert figures["dependency_cancelled"] == 2


def test_a_run_exactly_as_long_as_its_limit_succeeds(tmp_path):
    _, jobs = replay(tmp_path, "a,0,300,1,300,,\n")
    assert (jobs["a"].status, jobs["a"].end) == (Status.DONE, 300.0)


def test_a_preempted_run_gets_its_whole_limit_again(tmp_path):
    # b (priority 5) preempts a at t=100 on a one-GPU cluster; a restarts at 150 with its
    # checkpointed work kept and finishes within a fresh 250 s limit.
    jobs = [TraceJob("a", 0, 300, 1, time_limit_s=250, priority=0),
            TraceJob("b", 100, 50, 1, priority=5)]
    config = SimConfig(runtime=RuntimeModel(checkpoint_interval_s=1.0))
    result = simulate(jobs, cluster_from_shorthand("1x1xV100"), "priority", config)
    a = result.jobs[0]
    assert a.preemptions == 1
    assert a.status == Status.DONE and a.end == pytest.approx(350.0)


def test_backfill_counts_on_the_time_limit_of_a_job_without_an_estimate(tmp_path):
    # a holds 2 of 4 GPUs until t=1000 (its limit); b needs all 4 and is reserved for then;
    # c needs 2 for 100 s: it may run first only if something says it ends before t=1000.
    rows = "a,0,1000,2,1000,,\nb,1,100,4,,,\nc,2,100,2,{limit},,\n"
    _, limited = replay(tmp_path, rows.format(limit="200"), policy="backfill")
    _, unlimited = replay(tmp_path, rows.format(limit=""), policy="backfill")
    assert limited["c"].first_start == 2.0
    assert unlimited["c"].first_start == 1100.0
    assert limited["b"].first_start == unlimited["b"].first_start == 1000.0


def _most_running(states: list[JobState]) -> int:
    edges = sorted([(s.first_start, 1) for s in states] + [(s.end, -1) for s in states],
                   key=lambda edge: (edge[0], edge[1]))
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_a_throttled_array_never_runs_more_members_than_its_throttle(tmp_path):
    _, jobs = replay(tmp_path, "sweep,0,100,1,,,0-9%3\n", cluster="1x8xV100")
    members = [jobs[f"sweep-{i}"] for i in range(10)]
    assert all(m.status == Status.DONE for m in members)
    assert _most_running(members) == 3
    starts = [m.first_start for m in members]
    assert starts == sorted(starts)  # lowest index first
    assert max(m.end for m in members) == 400.0  # 4 waves of at most 3


@settings(max_examples=40, derandomize=True, deadline=None)
@given(count=st.integers(1, 12), limit=st.integers(1, 5), gpus=st.integers(1, 4),
       durations=st.lists(st.integers(1, 50), min_size=12, max_size=12))
def test_no_array_runs_more_than_its_throttle_at_once(count, limit, gpus, durations):
    jobs = [TraceJob(f"arr-{i}", 0, durations[i], gpus, array_id="arr", array_index=i,
                     array_limit=limit) for i in range(count)]
    jobs.append(TraceJob("other", 0, 30, 1))
    result = simulate(jobs, cluster_from_shorthand("1x8xV100"), "fifo", SimConfig(tick_s=None))
    members = [s for s in result.jobs if s.trace.array_id]
    assert all(s.status == Status.DONE for s in result.jobs)
    assert _most_running(members) <= limit


def test_a_queue_default_time_limit_applies_and_its_maximum_refuses(tmp_path):
    queue = QueueSpec("default", default_time_limit_s=60, max_time_limit_s=120)
    _, jobs = replay(tmp_path, "a,0,100,1,,,\nb,0,100,1,600,,\nc,0,100,1,120,,\n",
                     config=SimConfig(queues=(queue,)))
    assert (jobs["a"].status, jobs["a"].end) == (Status.TIMEOUT, 60.0)
    assert jobs["b"].status == Status.REJECTED and "maxTimeLimit" in jobs["b"].reason
    assert jobs["c"].status == Status.DONE


def test_a_dependency_on_an_unknown_job_cancels_and_one_on_a_later_job_is_refused():
    cluster = cluster_from_shorthand("1x1xV100")
    result = simulate([TraceJob("a", 0, 10, 1, dependencies=(("afterany", "gone"),))],
                      cluster, "fifo")
    assert result.jobs[0].status == Status.CANCELLED
    assert "job gone no longer exists" in result.jobs[0].reason
    later = [TraceJob("a", 0, 10, 1, dependencies=(("afterok", "b"),)), TraceJob("b", 0, 10, 1)]
    with pytest.raises(ValueError, match="not an earlier job"):
        simulate(later, cluster, "fifo")


def test_an_after_dependent_starts_as_soon_as_its_target_starts(tmp_path):
    _, jobs = replay(tmp_path, "a,0,100,1,,,\nb,0,10,1,,after:a,\n", config=SimConfig(tick_s=None))
    assert jobs["b"].first_start == 0.0


def test_replay_json_and_report_show_the_batch_figures(tmp_path):
    trace = tmp_path / "batch.csv"
    trace.write_text(HEADER + "a,0,500,1,5m,,\nb,0,10,1,,afterok:a,\nc,0,10,1,,afterany:a,\n")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(cli, ["sim", "replay", "--trace", str(trace), "--cluster",
                                      "1x2xV100", "--policy", "fifo", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "jobs timed out" in result.output and "jobs cancelled (dependency)" in result.output
    fifo = json.loads(out.read_text())["policies"]["fifo"]
    assert {k: fifo[k] for k in ("timeouts", "timeout_device_s", "dependency_cancelled",
                                 "mean_dependency_wait_s")} == {
        "timeouts": 1, "timeout_device_s": 300.0, "dependency_cancelled": 1,
        "mean_dependency_wait_s": 300.0}


def test_a_plain_replay_report_shows_no_batch_rows(tmp_path):
    trace = tmp_path / "plain.csv"
    trace.write_text("job_id,submit_time,duration,num_gpus\na,0,10,1\n")
    result = CliRunner().invoke(cli, ["sim", "replay", "--trace", str(trace), "--cluster",
                                      "1x2xV100", "--policy", "fifo"])
    assert result.exit_code == 0, result.output
    assert "timed out" not in result.output


def test_a_throttle_of_one_runs_the_members_back_to_back(tmp_path):
    _, jobs = replay(tmp_path, "s,0,10,1,,,0-3%1\n", config=SimConfig(tick_s=None))
    ends = [(jobs[f"s-{i}"].first_start, jobs[f"s-{i}"].end) for i in range(4)]
    assert all(end == start_next for (_, end), (start_next, _) in pairwise(ends))


def test_preempted_members_wait_again_within_their_throttle():
    # hi (priority 5) preempts both running members at t=10; after it ends they resume, and
    # the third member starts only when one of the first two has finished.
    members = [TraceJob(f"a-{i}", 0, 100, 1, array_id="a", array_index=i, array_limit=2)
               for i in range(3)]
    jobs = [*members, TraceJob("hi", 10, 50, 2, priority=5)]
    result = simulate(jobs, cluster_from_shorthand("1x2xV100"), "priority",
                      SimConfig(tick_s=None))
    states = {state.job.name: state for state in result.jobs}
    assert all(state.status == Status.DONE for state in result.jobs)
    assert states["a-0"].preemptions == states["a-1"].preemptions == 1
    assert states["a-2"].first_start == min(states["a-0"].end, states["a-1"].end)
    assert states["a-2"].first_start >= states["hi"].end
