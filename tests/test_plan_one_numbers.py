"""One set of numbers: the planner's estimate, the per-type speeds the scheduler receives on a
job, and goodput's program MFU of a job that ran at the predicted speed agree exactly."""

from __future__ import annotations

import json

import pytest

from suan.cluster.model import Cluster, Node
from suan.control.models import JobRow, ProgressRow, RankRow
from suan.control.store import Store, add_event
from suan.goodput.store import job_goodput
from suan.jobs.spec import parse_job
from suan.plan.advice import plan_search
from suan.plan.jobs import with_planner_advice
from suan.plan.use import flops_per_token, job_workload

MODEL, DEVICES, SEQ, BATCH = "llama3-8b", 8, 2048, 64
H100 = "H100-SXM-80GB"
CLUSTER = Cluster([Node("gpu-0", H100, 8, (tuple(range(8)),))])
DOCUMENT = {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": "llama"},
            "spec": {"command": ["x"], "replicas": DEVICES, "accelerators": {"count": 1},
                     "model": MODEL,
                     "env": {"SUAN_SEQ": str(SEQ), "SUAN_GLOBAL_BATCH": str(BATCH)}}}


def _ran_at(store: Store, tokens_per_s_per_device: float) -> None:
    """Store the job with every rank counting SEQ tokens per step at the given speed."""
    step_s = SEQ / tokens_per_s_per_device
    with store.session() as session:
        session.add(JobRow(id="llama", name="llama", user="u", queue="default",
                           state="succeeded", document=json.dumps(DOCUMENT),
                           checkpoint_dir="/tmp", submit_time=0.0, end_time=500.0, attempt=1,
                           stop_reason=""))
        session.flush()
        for kind, when in (("submitted", 0.0), ("scheduled", 1.0), ("running", 1.0),
                           ("succeeded", 500.0)):
            add_event(session, "llama", kind, kind, when)
        for rank in range(DEVICES):
            session.add(RankRow(job_id="llama", attempt=1, rank=rank, node="gpu-0",
                                devices=str(rank), pid=0, start_ticks=0, log_path=""))
            for step in range(1, 41):
                session.add(ProgressRow(job_id="llama", attempt=1, rank=rank, step=step,
                                        tokens=step * SEQ, step_time_s=step_s,
                                        seen_at=2.0 + step * step_s))


def test_planner_scheduler_and_goodput_give_the_same_numbers(tmp_path):
    plan = plan_search(MODEL, "H100", DEVICES, seq=SEQ, global_batch=BATCH, top=1).best
    assert plan is not None

    job = parse_job(DOCUMENT)
    advised = with_planner_advice(job, ("A100-80GB", "H100"))
    speeds = dict(advised.groups[0].planned_speeds)
    assert speeds["H100"] == plan.tokens_per_s

    assert job_workload(dict(job.env)) == (SEQ, BATCH)
    assert flops_per_token(MODEL, SEQ) == plan.model_flops_per_token

    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    _ran_at(store, plan.tokens_per_s_per_device)
    with store.session() as session:
        goodput = job_goodput(session, session.get(JobRow, "llama"), 600.0, CLUSTER)
    assert goodput["program_goodput"] == pytest.approx(plan.mfu, rel=1e-9)


def test_a_bad_sequence_length_names_the_variable():
    from suan.errors import SpecError

    with pytest.raises(SpecError) as caught:
        job_workload({"SUAN_SEQ": "4k"})
    assert caught.value.problems[0].path == "SUAN_SEQ"
    assert job_workload({}) == (4096, None)
