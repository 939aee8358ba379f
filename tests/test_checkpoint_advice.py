"""The inputs of the advised checkpoint interval: node failure rates learned from the store's
history (Gamma-Poisson with the published prior), the checkpoint cost from the spec, measured
saves or the model's size, and the advice's line and variables."""

from __future__ import annotations

import json

import pytest

from suan.checkpoint_interval import DAY_S, best_interval_s
from suan.cluster.model import Cluster, Node
from suan.control.checkpoint_advice import (
    ADVISED_VARIABLE,
    INTERVAL_VARIABLE,
    Advice,
    Cost,
    advise,
    model_cost,
    short_duration,
)
from suan.control.failure_rate import (
    PRIOR_RATE,
    PRIOR_WEIGHT,
    count_failures,
    estimate,
    failed_node,
    store_rates,
)
from suan.control.models import JobRow, ProgressRow
from suan.control.server import options_from_file
from suan.control.store import Store, add_event
from suan.errors import SpecError
from suan.plan.models import load_model

NODES = [f"n{i}" for i in range(10)]


def test_without_history_the_rate_is_the_published_prior() -> None:
    rates = estimate({}, NODES, days=0)
    assert rates.cluster == pytest.approx(PRIOR_RATE)
    assert rates.of("n3") == pytest.approx(PRIOR_RATE)


def test_a_long_history_outweighs_the_prior_and_a_lemon_node_rates_higher() -> None:
    counts = {"n0": 8, "n1": 2}  # 10 failures in 10 nodes x 1000 days = 1e-3 per node-day
    rates = estimate(counts, NODES, days=1000)
    assert rates.cluster == pytest.approx((PRIOR_WEIGHT + 10) / (PRIOR_WEIGHT / PRIOR_RATE
                                                                 + 10_000))
    assert rates.cluster < 2e-3
    assert rates.of("n0") > rates.of("n1") > rates.of("n5")
    assert rates.job_rate(["n0", "n5"]) == pytest.approx(rates.of("n0") + rates.of("n5"))


def test_events_of_one_down_node_seen_by_several_jobs_are_one_failure() -> None:
    events = [
        (100.0, "rank-failed", "node gpu-7 is down (engine says DOWN)"),
        (101.0, "rank-failed", "node gpu-7 is down (engine says DOWN)"),
        (5000.0, "rank-failed", "node gpu-7 is down (again)"),
        (200.0, "rank-failed", "rank 0 exited with code 1"),
        (300.0, "drain", "node gpu-2 drained by nvml: XID 79; stopping the gang, to be "
         "requeued and restarted from its last checkpoint"),
    ]
    assert count_failures(events) == {"gpu-7": 2, "gpu-2": 1}
    assert failed_node("rank-failed", "rank 3 vanished") is None


def test_advice_line_and_variables() -> None:
    advice = Advice(460.0, Cost(10.0, "spec"), 256, 3.8e-3, 3.1 * 3600)
    assert advice.line() == ("checkpoint every 7m40s: cost 10s (spec), 256 nodes at 3.8 "
                             "failures/1000 node-days -> MTBF 3.1h (Daly)")
    assert advice.environment() == {INTERVAL_VARIABLE: "460.0"}
    fixed = Advice(460.0, Cost(10.0, "spec"), 256, 3.8e-3, 3.1 * 3600, fixed_interval_s=1800)
    assert fixed.environment() == {INTERVAL_VARIABLE: "1800", ADVISED_VARIABLE: "460.0"}
    assert fixed.line().startswith("checkpoint every 30m (the spec's); advised 7m40s: ")
    unknown = Advice(None, None, 2, 5e-3, 100 * DAY_S, missing="no checkpoint cost known")
    assert unknown.environment() == {}
    assert unknown.line().startswith("no checkpoint interval advised: no checkpoint cost known")
    assert short_duration(45) == "45s" and short_duration(3 * DAY_S) == "3.0d"


def test_model_cost_is_its_checkpoint_size_over_the_nodes_bandwidth() -> None:
    cost = model_cost("llama3-8b", 4, 2.0)
    size = load_model("llama3-8b").total_params() * 12
    assert cost is not None and cost.source == "estimated"
    assert cost.seconds == pytest.approx(size / 1e9 / 8.0)
    assert model_cost("no-such-model", 1, 1.0) is None


def _job(store: Store, name: str, checkpoint: dict | None, model: str | None = None) -> str:
    spec: dict = {"command": ["x"], "replicas": 3}
    if checkpoint is not None:
        spec["checkpoint"] = checkpoint
    if model is not None:
        spec["model"] = model
    document = {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": name},
                "spec": spec}
    with store.session() as session:
        session.add(JobRow(id=name, name=name, user="u", queue="default", state="pending",
                           document=json.dumps(document), checkpoint_dir="/tmp", submit_time=0.0,
                           stop_reason=""))
    return name


def test_cost_sources_in_order_spec_measured_model(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    cluster = Cluster([Node(name, "H100", 8, (tuple(range(8)),)) for name in NODES])
    spec = _job(store, "given", {"cost": "30s", "interval": "1h"})
    measured = _job(store, "measured", None, model="llama3-8b")
    modelled = _job(store, "modelled", None, model="llama3-8b")
    unknown = _job(store, "unknown", None)
    with store.session() as session:
        for step, seconds in ((10, 4.0), (20, 6.0), (30, 5.0)):
            for rank, extra in ((0, 0.0), (1, 1.0)):
                session.add(ProgressRow(job_id=measured, attempt=1, rank=rank, step=step,
                                        checkpoint_s=seconds + extra, seen_at=float(step)))
        add_event(session, spec, "submitted", "submitted", when=0.0)
        add_event(session, spec, "rank-failed", "node n1 is down (DOWN)", when=10 * DAY_S)
    with store.session() as session:
        rates = store_rates(session, NODES, now=10 * DAY_S)
        assert rates.failures == 1 and rates.node_days == pytest.approx(100)
        advice = {name: advise(session, session.get(JobRow, name), cluster, now=10 * DAY_S)
                  for name in (spec, measured, modelled, unknown)}
    assert advice[spec].cost == Cost(30.0, "spec")
    assert advice[spec].fixed_interval_s == 3600
    assert advice[spec].nodes == 3, "not placed: as many nodes as replicas"
    assert advice[spec].mtbf_s == pytest.approx(DAY_S / (3 * rates.cluster))
    assert advice[spec].interval_s == pytest.approx(best_interval_s(30, advice[spec].mtbf_s))
    assert advice[measured].cost == Cost(6.0, "measured", "3 saves")  # median of 5, 7, 6
    assert advice[modelled].cost is not None and advice[modelled].cost.source == "estimated"
    assert advice[unknown].interval_s is None and "no checkpoint cost" in advice[unknown].missing


def test_the_servers_storage_bandwidth_comes_from_its_settings_file(tmp_path) -> None:
    path = tmp_path / "suan.yaml"
    path.write_text("storage: {checkpointWriteGBs: 2.5}\n")
    options = options_from_file(path, home=tmp_path / "home", engine=None, policy=None)
    assert options.checkpoint_write_gbs == 2.5
    path.write_text("storage: {checkpointWriteGBs: 0}\n")
    with pytest.raises(SpecError, match=r"storage\.checkpointWriteGBs"):
        options_from_file(path, home=tmp_path / "home", engine=None, policy=None)
