"""A job's spec is parsed once, at submission: the Job checked there is the one the scheduler
and the launch use, and a later parse of the stored document (after a restart) gives an equal
Job by the same parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suan.control import jobs as stored_jobs
from suan.control.auth import Identity
from suan.control.jobs import scheduler_job
from suan.control.models import JobRow
from suan.control.store import Store, database_url
from suan.control.submit import submit
from suan.errors import SpecError
from suan.jobs.spec import (
    flatten_documents,
    load_documents,
    load_documents_text,
    parse_job,
    read_stream,
)

ADMIN = Identity("admin", admin=True)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "jobs"
JOB = """\
apiVersion: suan.ai/v1
kind: Job
metadata: {name: once, labels: {team: a}}
spec:
  command: [python, train.py, 1e3]
  env: {STEPS: 100}
  replicas: 2
  accelerators: {count: 4, type: H100}
  cpu: 1e1
  memory: 0.4Mi
  runtimeEstimate: 1h30m
"""


def submitted(store: Store, home: Path, text: str) -> list[str]:
    with store.session() as session:
        return [entry["id"] for entry in submit(session, ADMIN, text, None, home).jobs]


def test_the_scheduler_uses_the_job_parsed_at_submission(tmp_path, monkeypatch):
    store = Store.open(database_url(tmp_path))
    [job_id] = submitted(store, tmp_path, JOB)

    def second_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the stored document was parsed again")

    monkeypatch.setattr(stored_jobs, "parse_job", second_parse)
    with store.session() as session:
        job = scheduler_job(session.get(JobRow, job_id))
    assert (job.name, job.user, job.queue) == (job_id, "admin", "default")
    [group] = job.groups
    assert (group.memory_mib, group.cpu_milli, group.accelerators) == (1, 10_000, 4)
    assert job.command == ("python", "train.py", "1e3")


def test_a_restart_parses_the_stored_document_to_an_equal_job(tmp_path):
    store = Store.open(database_url(tmp_path))
    [job_id] = submitted(store, tmp_path, JOB)
    with store.session() as session:
        row = session.get(JobRow, job_id)
        kept = scheduler_job(row)
        stored_jobs._jobs.pop(job_id)  # as after a restart: nothing kept
        stored_jobs._parsed.cache_clear()
        again = scheduler_job(row)
    assert again is not kept and again == kept


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.name)
def test_every_example_job_survives_the_store_unchanged(path):
    try:
        jobs, _ = load_documents(path)
    except SpecError:
        pytest.skip("an example of mistakes")
    documents = [
        document
        for document in flatten_documents(read_stream(path.read_text(), str(path)))
        if document.get("kind") == "Job"
    ]
    for job, document in zip(jobs, documents, strict=True):
        assert parse_job(json.loads(json.dumps(document))) == job


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("metadata", "{name: dated, labels: {since: 2024-05-01}}", "metadata.labels.since"),
        ("metadata", "{name: binary, labels: {blob: !!binary aGVsbG8=}}", "metadata.labels.blob"),
        ("metadata", "{name: keyed, labels: {1: one}}", "metadata.labels.1"),
    ],
)
def test_a_value_json_cannot_store_is_refused_at_its_path(field, value, path):
    text = f"apiVersion: suan.ai/v1\nkind: Job\n{field}: {value}\nspec: {{command: [x]}}\n"
    with pytest.raises(SpecError) as caught:
        load_documents_text(text)
    [problem] = caught.value.problems
    assert problem.path == f"documents[0].{path}"
    assert "string keys" in problem.allowed

