"""Trace readers on the real files, and clear errors (or counted skips) for bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from suan.errors import SpecError
from suan.sim.traces import read_gavel, read_generic, read_philly, read_tiresias, read_trace


@pytest.fixture
def philly(shared) -> Path:
    return shared("traces", "philly")


def test_philly_csv_and_its_sorted_copy_give_the_same_jobs(philly):
    raw = read_philly(philly / "philly.csv")
    derived = read_philly(philly / "philly_jobs_sorted.csv.gz")
    assert len(raw.jobs) == len(derived.jobs) == 82_247
    assert raw.jobs[:50] == derived.jobs[:50] and raw.jobs[-1] == derived.jobs[-1]
    assert raw.jobs[-1].submit_time == 9_408_690
    assert raw.jobs[0].queue == "7f04ca" and raw.jobs[0].num_gpus == 8


def test_the_helios_selection_has_68503_jobs(philly):
    vcs = {line.split(",")[0] for line in
           (philly / "philly_vc_nodes_helios.csv").read_text().splitlines()[1:]}
    trace = read_philly(philly / "philly_jobs_sorted.csv.gz", vcs=vcs,
                        start="2017-10-01 00:00:00", end="2017-11-30 23:59:00")
    assert len(trace.jobs) == 68_503
    # Each job's series is its submission burst: far fewer series than jobs, none across VCs.
    series = {(job.queue, job.series) for job in trace.jobs}
    assert len(trace.jobs) > 3 * len(series)
    assert len({name for _, name in series}) == len(series)
    plain = read_philly(philly / "philly_jobs_sorted.csv.gz", vcs={"ed69ec"},
                        series_gap_s=None)
    assert {job.series for job in plain.jobs} == {""}


def test_tiresias_and_gavel_peer_files(shared):
    peers = shared("peer-inputs")
    sixty = read_tiresias(peers / "tiresias" / "60_job.csv")
    assert len(sixty.jobs) == 60 and sixty.jobs[0].duration_s == 164
    gavel = read_gavel(peers / "gavel" / "gavel_cm_500_lam2400_s0.trace")
    assert len(gavel.jobs) == 500
    first = gavel.jobs[0]
    assert first.num_gpus == 8 and set(first.durations) == {"V100", "P100", "K80"}
    assert first.durations["K80"] > first.durations["P100"] > first.durations["V100"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_generic_csv_reads_optional_columns(tmp_path):
    path = write(tmp_path, "job_id,submit_time,duration,num_gpus,gpu_type,user,queue,priority\n"
                           "j1,0,3600,8,H100,ann,research,2\nj2,60,10,1,,,,\n")
    jobs = read_generic(path).jobs
    assert jobs[0].gpu_type == "H100" and jobs[0].queue == "research" and jobs[0].priority == 2
    assert jobs[1].gpu_type is None and jobs[1].queue == "default"
    assert jobs[0].series == jobs[1].series == ""


def test_generic_csv_reads_a_series_column(tmp_path):
    path = write(tmp_path, "job_id,submit_time,duration,num_gpus,series\n"
                           "j1,0,60,1,sweep-1\nj2,5,60,1,sweep-1\nj3,9,60,1,\n")
    assert [j.series for j in read_generic(path).jobs] == ["sweep-1", "sweep-1", ""]


def test_a_bad_row_names_its_line(tmp_path):
    path = write(tmp_path, "job_id,submit_time,duration,num_gpus\nj1,0,10,1\nj2,5,ten,1\n")
    with pytest.raises(SpecError, match=r"line 3: column duration: not a number: 'ten'"):
        read_trace(path, "csv")


def test_skip_bad_skips_and_counts(tmp_path):
    path = write(tmp_path, "job_id,submit_time,duration,num_gpus\nj1,0,10,1\nj2,5,10,0\n"
                           "j1,6,10,1\nj3,7,10,2\n")
    trace = read_trace(path, "csv", skip_bad=True)
    assert [j.job_id for j in trace.jobs] == ["j1", "j3"] and trace.skipped == 2
    assert "duplicate job_id" in trace.problems[1]


def test_a_missing_column_is_reported_on_line_1(tmp_path):
    with pytest.raises(SpecError, match="line 1: missing column"):
        read_trace(write(tmp_path, "job_id,duration\n1,2\n"), "csv")
