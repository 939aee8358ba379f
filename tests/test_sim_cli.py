"""`suan sim` from the command line: a replay with every output, errors without tracebacks."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from suan.cli.main import cli

runner = CliRunner()


def write_trace(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "trace.csv"
    path.write_text("job_id,submit_time,duration,num_gpus,queue\n"
                    "a,0,100,8,research\nb,1,50,8,prod\nc,2,10,8,prod\n")
    return path


def test_replay_prints_policies_side_by_side_and_writes_every_output(tmp_path):
    out = tmp_path / "out.json"
    result = runner.invoke(cli, [
        "sim", "replay", "--trace", str(write_trace(tmp_path)), "--cluster", "1x8xV100",
        "--policy", "fifo,sjf", "--json", str(out), "--plots", str(tmp_path / "plots"),
        "--jobs-csv", str(tmp_path / "jobs.csv")])
    assert result.exit_code == 0, result.output
    assert "fifo" in result.output and "sjf" in result.output
    figures = json.loads(out.read_text())["policies"]
    assert round(figures["fifo"]["avg_jct_s"], 2) == round((100 + 149 + 158) / 3, 2)
    assert set(figures["sjf"]) >= {"avg_jct_s", "median_jct_s", "p99_jct_s", "avg_queue_s",
                                   "makespan_s", "gpu_utilization"}
    assert (tmp_path / "plots" / "jct_cdf.png").stat().st_size > 0
    assert len((tmp_path / "jobs.csv").read_text().splitlines()) == 1 + 2 * 3


def test_an_unknown_policy_is_a_clear_error(tmp_path):
    result = runner.invoke(cli, ["sim", "replay", "--trace", str(write_trace(tmp_path)),
                                 "--cluster", "1x8xV100", "--policy", "nope"])
    assert result.exit_code != 0
    assert "unknown policy 'nope'" in str(result.exception)


def test_pack_runs_a_small_experiment(tmp_path):
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("sn,cpu_milli,memory_mib,gpu,model\n"
                     + "".join(f"n{i},64000,262144,4,T4\n" for i in range(4)))
    pods = tmp_path / "pods.csv"
    pods.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
                    + "".join(f"p{i},2000,1024,1,{(250, 500, 1000)[i % 3]}\n" for i in range(30)))
    out = tmp_path / "pack.json"
    result = runner.invoke(cli, ["sim", "pack", "--nodes", str(nodes), "--pods", str(pods),
                                 "--placement", "random,bestfit,fgd", "--seeds", "1-2",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    placements = json.loads(out.read_text())["placements"]
    assert set(placements) == {"random", "bestfit", "fgd"}
    assert "unallocated_gpu_pct_at_100" in placements["fgd"]


def test_paths_with_brackets_are_printed_whole(tmp_path):
    folder = tmp_path / "run[bold]"
    folder.mkdir()
    trace = write_trace(folder)
    out = folder / "out.json"
    result = runner.invoke(cli, ["sim", "replay", "--trace", str(trace), "--cluster", "1x8xV100",
                                 "--policy", "fifo", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert str(trace) in result.output
