"""The Cluster page's picture of every device: free, allocated to a job (or hidden from those
who may not see the job), degraded, cordoned by the operator, down, unhealthy, or of unknown
health, nodes grouped by block and rack. The engine's report is the one stand-in: nodes in
these states cannot be had from the one machine here."""

from __future__ import annotations

import json

import pytest

from suan.cluster.model import Node, NodeHealth
from suan.control.auth import Identity, create_user
from suan.control.inventory import ClusterInventory
from suan.control.models import JobRow
from suan.control.overrides import Action, set_override
from suan.control.store import Store, database_url
from suan.devices.watch import HEALTH_LABEL
from suan.web.data import cluster_page

H100 = "H100-SXM-80GB"


class Reported:
    """An engine that reports these nodes."""

    engine = "reported"

    def __init__(self, nodes):
        self.nodes = tuple(nodes)

    def inventory(self):
        return self.nodes


def node(name: str, rack: str = "r1", **extra) -> Node:
    return Node(name, H100, 4, ((0, 1), (2, 3)), block="b1", rack=rack, **extra)


NODES = [
    node("ok"),
    node("slow", health=NodeHealth.DEGRADED),
    node("dead", rack="r2", health=NodeHealth.DOWN),
    node("ecc", rack="r2", unhealthy_devices=frozenset({1})),
    node("blind", rack="r2", labels={HEALTH_LABEL: "unknown"}),
    node("held", rack="r2"),
]


def running(job_id: str, user: str, node_name: str, devices: list[int]) -> JobRow:
    placement = {"replicas": [{"group": 0, "node": node_name, "devices": devices}]}
    return JobRow(id=job_id, name=job_id, user=user, queue="default", state="running",
                  document="{}", placement=json.dumps(placement), checkpoint_dir="",
                  workdir="", submit_time=0.0, attempt=1, restarts=0, reason="",
                  reason_code="", cancel_requested=False, stop_reason="")


@pytest.fixture
def page(tmp_path):
    store = Store.open(database_url(tmp_path))
    with store.session() as session:
        for user in ("alice", "bob"):
            create_user(session, user)
        session.add_all([running("a-1", "alice", "ok", [0, 1]),
                         running("b-1", "bob", "ok", [2])])
        set_override(session, "held", Action.CORDON, "fan", "admin", 0.0)
    inventory = ClusterInventory(Reported(NODES), 3600.0)

    def shown(caller: Identity):
        with store.session() as session:
            return cluster_page(session, caller, inventory, "reported", True)

    yield shown
    store.close()


def states(shown) -> dict[str, list[tuple[str, str]]]:
    return {view["name"]: [(d["state"], d["job"]) for domain in view["domain_devices"]
                           for d in domain]
            for group in shown["groups"] for view in group["nodes"]}


def test_every_device_state_and_who_holds_it(page):
    shown = states(page(Identity("admin", True)))
    assert shown["ok"] == [("allocated", "a-1"), ("allocated", "a-1"),
                           ("allocated", "b-1"), ("free", "")]
    assert {s for s, _ in shown["slow"]} == {"degraded"}
    assert {s for s, _ in shown["dead"]} == {"down"}
    assert [s for s, _ in shown["ecc"]] == ["free", "unhealthy", "free", "free"]
    assert {s for s, _ in shown["blind"]} == {"unknown"}
    assert {s for s, _ in shown["held"]} == {"cordoned"}


def test_another_users_job_is_hidden_not_named(page):
    shown = states(page(Identity("alice")))
    assert shown["ok"][:3] == [("allocated", "a-1"), ("allocated", "a-1"),
                               ("allocated", "hidden")]


def test_devices_are_grouped_by_link_domain_and_nodes_by_rack(page):
    shown = page(Identity("admin", True))
    assert [g["rack"] for g in shown["groups"]] == ["r1", "r2"]
    first = shown["groups"][0]["nodes"][0]
    assert [[d["id"] for d in domain] for domain in first["domain_devices"]] == [
        ["0", "1"], ["2", "3"]]
    assert [(r["rack"], r["nodes"]) for r in shown["racks"]] == [("r1", 2), ("r2", 4)]
    assert shown["counts"]["allocated"] == 3
    assert sum(shown["counts"].values()) == 4 * len(NODES)
