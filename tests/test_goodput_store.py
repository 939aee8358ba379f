"""Goodput read from the store: program goodput is the MFU of the job's reported tokens and
step times with the planner's FLOPs per token and the catalog's peak of its devices; the
cluster total weighs jobs by their devices."""

from __future__ import annotations

import json

import pytest

from suan.catalog import default_catalog
from suan.cluster.model import Cluster, Node
from suan.control.models import JobRow, ProgressRow, RankRow
from suan.control.store import Store, add_event
from suan.goodput.store import job_goodput, total
from suan.plan.flops import model_flops_per_token
from suan.plan.models import load_model

CLUSTER = Cluster([Node("gpu-0", "H100-SXM-80GB", 8, (tuple(range(8)),))])


def _store_job(store: Store, name: str, model: str | None, devices: int) -> None:
    spec: dict = {"command": ["x"], "replicas": devices, "accelerators": {"count": 1}}
    if model:
        spec["model"] = model
        spec["env"] = {"SUAN_SEQ": "2048"}
    document = {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": name},
                "spec": spec}
    with store.session() as session:
        session.add(JobRow(id=name, name=name, user="u", queue="default", state="succeeded",
                           document=json.dumps(document), checkpoint_dir="/tmp",
                           submit_time=0.0, end_time=100.0, attempt=1, stop_reason=""))
        session.flush()
        for kind, when in (("submitted", 0.0), ("scheduled", 10.0), ("running", 11.0),
                           ("succeeded", 100.0)):
            add_event(session, name, kind, kind, when)
        for rank in range(devices):
            session.add(RankRow(job_id=name, attempt=1, rank=rank, node="gpu-0",
                                devices=str(rank), pid=0, start_ticks=0, log_path=""))
            for step in range(1, 81):
                session.add(ProgressRow(job_id=name, attempt=1, rank=rank, step=step,
                                        tokens=step * 4096, step_time_s=1.0,
                                        seen_at=15.0 + step))


def test_program_goodput_is_mfu_with_the_planners_flops_and_the_catalogs_peak(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    _store_job(store, "llama", "llama3-8b", 4)
    _store_job(store, "plain", None, 2)
    with store.session() as session:
        llama = job_goodput(session, session.get(JobRow, "llama"), 200.0, CLUSTER)
        plain = job_goodput(session, session.get(JobRow, "plain"), 200.0, CLUSTER)
        blind = job_goodput(session, session.get(JobRow, "llama"), 200.0, None)
    flops = model_flops_per_token(load_model("llama3-8b"), 2048)
    peak = default_catalog().get("H100-SXM-80GB").bf16_tflops * 1e12
    expected = 4 * 4096 * flops / (4 * peak)  # 4 ranks x 4096 tokens per 1 s step
    assert llama["program_goodput"] == pytest.approx(expected)
    assert llama["goodput"] == pytest.approx(
        llama["scheduling_goodput"] * llama["runtime_goodput"] * expected)
    assert plain["program_goodput"] is None and plain["goodput"] is None
    assert "names no model" in plain["notes"][-1]
    assert blind["program_goodput"] is None and "type" in blind["notes"][-1]
    assert llama["breakdown"]["queue_wait"] == pytest.approx(10)
    assert llama["breakdown"]["restart"] == pytest.approx(6)  # scheduled 10, first record 16

    whole = total([llama, plain])
    assert whole["device_s"] == pytest.approx(100 * 4 + 100 * 2)
    assert whole["breakdown_device_s"]["queue_wait"] == pytest.approx(10 * 6)
    assert whole["scheduling_goodput"] == pytest.approx(0.9)
    assert whole["program_goodput"] == pytest.approx(expected)
    assert whole["program_goodput_jobs"] == 1


def test_since_reads_a_duration_back_from_now_or_a_date_and_names_the_option_otherwise():
    import typer

    from suan.cli.goodput_cmd import parse_since

    assert parse_since("1d", now=200_000.0) == 200_000.0 - 86_400
    assert parse_since("2026-12-01T08:00", now=0.0) > 1.7e9
    with pytest.raises(typer.BadParameter, match="neither a duration"):
        parse_since("yesterday", now=0.0)


def test_describe_lines_show_each_nonzero_bucket_and_the_advice(tmp_path):
    from suan.cli.goodput_cmd import describe_lines

    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    _store_job(store, "llama", "llama3-8b", 2)
    with store.session() as session:
        figures = job_goodput(session, session.get(JobRow, "llama"), 200.0, CLUSTER)
    lines = describe_lines({"goodput": figures, "checkpoint": {"line": "checkpoint every 5m"}})
    assert lines[0].startswith("goodput: wall 100s = queue wait 10s (10.0%), restart 6s")
    assert "hang" not in lines[0]
    assert lines[1].startswith("goodput: scheduling 90.0% x runtime ")
    assert lines[-1] == "checkpoint every 5m"
