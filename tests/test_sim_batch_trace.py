"""The batch columns of a generic trace: time limits, dependencies and arrays, read with the
job spec's parsers; a bad cell is an error naming its line and column."""

from __future__ import annotations

import pytest

from suan.errors import SpecError
from suan.sim.traces import read_generic, read_trace

HEADER = "job_id,submit_time,duration,num_gpus,time_limit,dependency,array\n"


def write(tmp_path, rows: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "batch.csv"
    path.write_text(HEADER + rows)
    return path


def test_time_limits_read_as_seconds_or_durations(tmp_path):
    jobs = read_generic(write(tmp_path, "a,0,10,1,600,,\nb,0,10,1,1h30m,,\nc,0,10,1,,,\n")).jobs
    assert [job.time_limit_s for job in jobs] == [600.0, 5400.0, None]


def test_an_array_row_becomes_one_member_per_index_with_the_row_s_run(tmp_path):
    jobs = read_generic(write(tmp_path, "sweep,5,40,2,,,0-6:3%2\n")).jobs
    assert [job.job_id for job in jobs] == ["sweep-0", "sweep-3", "sweep-6"]
    assert {(j.array_id, j.array_limit, j.duration_s, j.num_gpus, j.submit_time)
            for j in jobs} == {("sweep", 2, 40.0, 2, 5.0)}
    assert [job.array_index for job in jobs] == [0, 3, 6]


def test_dependencies_name_earlier_rows_and_an_array_id_names_every_member(tmp_path):
    jobs = read_generic(write(tmp_path, (
        "prep,0,10,1,,,0-1\n"
        "train,0,10,1,,afterok:prep-1,\n"
        "reduce,1,10,1,,\"afterok:prep,afterany:train\",\n"
    ))).jobs
    by_id = {job.job_id: job for job in jobs}
    assert by_id["train"].dependencies == (("afterok", "prep-1"),)
    assert by_id["reduce"].dependencies == (
        ("afterok", "prep-0"), ("afterok", "prep-1"), ("afterany", "train"))


def test_a_trace_without_batch_cells_reads_as_before(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("job_id,submit_time,duration,num_gpus\na,0,10,1\nb,1,20,2\n")
    with_empty = write(tmp_path, "a,0,10,1,,,\nb,1,20,2,,,\n")
    assert read_generic(with_empty).jobs == read_generic(plain).jobs
    job = read_generic(plain).jobs[0]
    assert (job.time_limit_s, job.dependencies, job.array_id, job.array_limit) == (
        None, (), "", None)


@pytest.mark.parametrize(("rows", "message"), [
    ("a,0,10,1,soon,,\n", "line 2: column time_limit: 'soon' is not a duration"),
    ("a,0,10,1,0,,\n", "line 2: column time_limit: '0' must be > 0"),
    ("a,0,10,1,,afterok:b,\nb,0,10,1,,,\n",
     "line 2: column dependency: job 'b' is not on an earlier row"),
    ("a,5,10,1,,,\nb,1,10,1,,afterok:a,\n",
     "line 3: column dependency: job 'a' is submitted after this one"),
    ("a,0,10,1,,,\nb,0,10,1,,afterwards:a,\n",
     "line 3: column dependency: unknown dependency kind 'afterwards'"),
    ("a,0,10,1,,,\nb,0,10,1,,a,\n", "line 3: column dependency: 'a' has no kind"),
    ("a,0,10,1,,,0-3%0\n", "line 2: column array: the throttle '0'"),
    ("a,0,10,1,,,5-2\n", "line 2: column array: '5-2' is empty"),
    ("a,0,10,1,,,0-1\na-1,0,10,1,,,\n", "line 3: duplicate job_id 'a-1' (first on line 2)"),
])
def test_a_bad_batch_cell_names_its_line_and_column(tmp_path, rows, message):
    with pytest.raises(SpecError) as error:
        read_trace(write(tmp_path, rows), "csv")
    assert message in str(error.value)


def test_skip_bad_drops_a_row_whose_dependency_is_unknown(tmp_path):
    trace = read_trace(write(tmp_path, "a,0,10,1,,,\nb,0,10,1,,afterok:zz,\n"), "csv",
                       skip_bad=True)
    assert [job.job_id for job in trace.jobs] == ["a"]
    assert trace.skipped == 1
