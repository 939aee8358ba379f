"""The merge of a node's health from the engine and the other sources' verdicts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suan.cluster.model import Cluster, Node, NodeHealth
from suan.control.node_health import (
    HEALTH_ORDER,
    Verdict,
    merge_cluster,
    merge_health,
    merge_node,
    node_health_of,
)
from suan.devices.model import Severity


def test_the_worst_wins_and_every_reason_is_kept_worst_first():
    verdicts = [Verdict("nvidia", "warn", "GPU 1 at 88 C"),
                Verdict("operator", "cordon", "cordoned by alice: fan noise"),
                Verdict("amd", "degrade", "GPU 0: 3 retired pages")]
    health, reason = merge_health(NodeHealth.READY, "", verdicts)
    assert health == NodeHealth.CORDONED
    assert reason == "cordoned by alice: fan noise; GPU 0: 3 retired pages; GPU 1 at 88 C"


def test_an_engines_down_outranks_every_verdict_and_ok_says_nothing():
    verdicts = [Verdict("operator", "drain", "drained by bob: PSU"), Verdict("nvidia", "ok", "")]
    health, reason = merge_health(NodeHealth.DOWN, "slurm: down*: not responding", verdicts)
    assert health == NodeHealth.DOWN
    assert reason == "slurm: down*: not responding; drained by bob: PSU"
    assert merge_health(NodeHealth.READY, "", [Verdict("nvidia", Severity.OK, "fine")]) == (
        NodeHealth.READY, "")


def test_a_reason_quoted_whole_by_another_is_shown_once():
    verdicts = [Verdict("nvidia", "drain", "GPU 2: XID 79"),
                Verdict("operator", "drain", "drained by nvidia: GPU 2: XID 79")]
    assert merge_health(NodeHealth.READY, "", verdicts) == (
        NodeHealth.CORDONED, "drained by nvidia: GPU 2: XID 79")


def test_an_unknown_severity_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="'fatal' is not one of ok, warn, degrade, cordon, drain"):
        merge_health(NodeHealth.READY, "", [Verdict("x", "fatal", "?")])


def test_a_cluster_without_verdicts_on_its_nodes_is_returned_as_it_is():
    cluster = Cluster([Node("a", None, 0, ()), Node("b", None, 0, ())])
    assert merge_cluster(cluster, {}) is cluster
    assert merge_cluster(cluster, {"elsewhere": [Verdict("x", "drain", "r")]}) is cluster
    merged = merge_cluster(cluster, {"b": [Verdict("x", "degrade", "slow link")]})
    assert merged.node("a") is cluster.node("a")
    assert (merged.node("b").health, merged.node("b").health_reason) == (
        NodeHealth.DEGRADED, "slow link")


SEVERITIES = st.sampled_from([s.value for s in Severity])
VERDICTS = st.lists(st.tuples(st.sampled_from(["nvidia", "operator", "amd"]), SEVERITIES,
                              st.text("abcxyz ", min_size=1, max_size=6)), max_size=6)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(engine=st.sampled_from(list(NodeHealth)), said=VERDICTS, data=st.data())
def test_the_merge_is_the_worst_reading_whatever_the_order(engine, said, data):
    verdicts = [Verdict(*v) for v in said]
    shuffled = data.draw(st.permutations(verdicts))
    health, reason = merge_health(engine, "engine words", verdicts)
    expected = max([engine, *(node_health_of(v.severity) for v in verdicts)],
                   key=HEALTH_ORDER.index)
    assert health == expected
    assert merge_health(engine, "engine words", shuffled)[0] == health
    node = merge_node(Node("n", None, 0, (), health=engine, health_reason="engine words"),
                      verdicts)
    assert (node.health, node.health_reason) == (health, reason)
    assert "engine words" in reason
