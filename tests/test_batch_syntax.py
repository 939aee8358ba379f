"""The batch notations (dependencies, arrays), the dependency verdicts and the compact rows
of `suan jobs`, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suan.cli.batch_rows import compact_rows, counts_text
from suan.control.batch_gate import verdict, waits_reason
from suan.jobs.batch_syntax import (
    MAX_ARRAY_MEMBERS,
    ArraySpec,
    Dependency,
    format_dependencies,
    parse_array,
    parse_dependencies,
    with_dependency,
)


def test_slurm_dependency_notation_with_continued_items():
    assert parse_dependencies("afterok:a:b,c,afterany:d") == (
        Dependency("afterok", "a"), Dependency("afterok", "b"), Dependency("afterok", "c"),
        Dependency("afterany", "d"),
    )
    assert parse_dependencies("after:x,after:x") == (Dependency("after", "x"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "'x' has no kind (write afterok:x)"),
        ("afterok:", "'' is not a job id or name"),
        ("afterok:A", "'A' is not a job id or name"),
        ("afterok:a,,b", "'afterok:a,,b' has an empty item"),
        ("singleton", "'singleton' has no kind (write afterok:singleton)"),
    ],
)
def test_a_bad_dependency_says_what_is_wrong(text, message):
    with pytest.raises(ValueError) as refused:
        parse_dependencies(text)
    assert str(refused.value) == message


def test_array_ranges_steps_lists_and_throttle():
    assert parse_array("0-9:3%2") == ArraySpec((0, 3, 6, 9), 2)
    assert parse_array("7") == ArraySpec((7,), None)
    assert parse_array("1,5-6,5") == ArraySpec((1, 5, 6), None)
    with pytest.raises(ValueError, match="more than 10,000 members"):
        parse_array(f"0-{MAX_ARRAY_MEMBERS}")
    with pytest.raises(ValueError, match="larger than 99,999"):
        parse_array("100000")


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.integers(0, 500), st.integers(0, 500), st.integers(1, 50),
       st.none() | st.integers(1, 64))
def test_an_array_range_holds_exactly_the_indices_of_python_range(first, span, step, limit):
    text = f"{first}-{first + span}:{step}" + (f"%{limit}" if limit else "")
    assert parse_array(text) == ArraySpec(tuple(range(first, first + span + 1, step)), limit)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["after", "afterok", "afternotok", "afterany"]),
                          st.from_regex(r"[a-z0-9][-a-z0-9]{0,12}", fullmatch=True)),
                min_size=1, max_size=6, unique=True))
def test_formatted_dependencies_read_back_the_same(pairs):
    dependencies = tuple(Dependency(kind, target) for kind, target in pairs)
    assert parse_dependencies(format_dependencies(dependencies)) == dependencies


@pytest.mark.parametrize(
    ("kind", "state", "started", "expected"),
    [
        ("after", "pending", False, "wait"),
        ("after", "running", True, "met"),
        ("after", "restarting", True, "met"),
        ("after", "cancelled", False, "met"),
        ("afterok", "running", True, "wait"),
        ("afterok", "succeeded", True, "met"),
        ("afterok", "failed", True, "never"),
        ("afterok", "cancelled", False, "never"),
        ("afternotok", "failed", True, "met"),
        ("afternotok", "cancelled", False, "met"),
        ("afternotok", "succeeded", True, "never"),
        ("afterany", "failed", True, "met"),
        ("afterany", "preempted", True, "wait"),
        ("afterok", None, False, "never"),
    ],
)
def test_dependency_verdicts(kind, state, started, expected):
    assert verdict(kind, state, started) == expected


def test_a_wait_reason_names_the_jobs_by_kind_and_counts_the_rest():
    unmet = [("afterok", f"s-{i}") for i in range(5)] + [("after", "prep")]
    assert waits_reason(unmet) == (
        "waits for jobs s-0, s-1, s-2 and 2 more to succeed; job prep to start")


def test_compact_rows_put_an_array_on_one_line_at_its_first_member():
    jobs = [
        {"id": "a-1", "array_id": "a", "array_index": 1, "array_count": 3, "state": "pending",
         "reason": "waits"},
        {"id": "solo", "array_id": None, "state": "running", "reason": ""},
        {"id": "a-0", "array_id": "a", "array_index": 0, "array_count": 3, "state": "running",
         "reason": ""},
    ]
    rows = compact_rows(jobs, lambda job: [job["id"], "u", "q", job["state"], job["reason"]])
    assert rows == [["a [3]", "u", "q", "1 running, 1 pending", "waits"],
                    ["solo", "u", "q", "running", ""]]
    assert counts_text(["failed", "running", "failed"]) == "1 running, 2 failed"


def test_submit_dependency_option_is_written_into_every_job():
    text = "kind: Job\nspec: {command: [x]}\n---\nkind: Queue\nmetadata: {name: q}\n"
    written = with_dependency(text, "afterok:a")
    assert "dependencies: afterok:a" in written and written.count("dependencies") == 1
    with pytest.raises(ValueError, match="--dependency: unknown dependency kind 'afterk'"):
        with_dependency(text, "afterk:a")
