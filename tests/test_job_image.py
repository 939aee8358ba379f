"""`spec.image`: the container image of engines that run containers (Kubernetes)."""

from __future__ import annotations

import pytest

from suan.errors import SpecError
from suan.jobs.spec import job_to_document, parse_job


def _document(**spec: object) -> dict:
    return {
        "apiVersion": "suan.ai/v1",
        "kind": "Job",
        "metadata": {"name": "train"},
        "spec": {"command": ["python", "train.py"], **spec},
    }


def test_image_is_optional_and_empty_by_default() -> None:
    assert parse_job(_document()).image == ""
    assert "image" not in job_to_document(parse_job(_document()))["spec"]


def test_image_round_trips() -> None:
    job = parse_job(_document(image="registry.local/suan/trainer:1"))
    assert job.image == "registry.local/suan/trainer:1"
    assert parse_job(job_to_document(job)) == job


@pytest.mark.parametrize("bad", ["", "has space:1", 7])
def test_bad_image_names_its_path(bad: object) -> None:
    with pytest.raises(SpecError) as caught:
        parse_job(_document(image=bad))
    assert [p.path for p in caught.value.problems] == ["spec.image"]
