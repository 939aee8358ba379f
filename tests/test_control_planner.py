"""A job that names its model and no layout: the planner's layout reaches every rank, and a
model the planner cannot read is refused at submit with the field path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from control_helpers import job_yaml
from control_helpers import server as server

from suan.client import ApiError


def test_ranks_get_the_planners_layout(server):
    client = server.client()
    [job_id] = client.submit(job_yaml("planned", ranks=4, steps=1, extra="  model: llama3-8b\n"))
    job = client.wait(job_id, timeout=30)
    assert job["state"] == "succeeded", job["events"]
    ckpt = Path(job["checkpoint_dir"])
    seen = [json.loads((ckpt / f"env-0-{rank}.json").read_text()) for rank in range(4)]
    layouts = {(s["SUAN_TP"], s["SUAN_PP"], s["SUAN_DP"], s["SUAN_CP"]) for s in seen}
    assert len(layouts) == 1
    tp, pp, dp, cp = (int(value) for value in layouts.pop())
    assert tp * pp * dp * cp == 4


def test_a_model_the_planner_cannot_read_is_refused(server):
    client = server.client()
    with pytest.raises(ApiError) as refused:
        client.submit(job_yaml("unplanned", ranks=1, extra="  model: no-such-model\n"))
    assert refused.value.status == 422
    assert "spec.model" in str(refused.value) and "no-such-model" in str(refused.value)
