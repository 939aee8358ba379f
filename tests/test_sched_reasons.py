"""Why a job waits, with a code from one closed list; why a start fell back; why a job of the
same queue was preempted."""

from __future__ import annotations

import re
from pathlib import Path

from sched_helpers import cluster, job, node, running, snapshot

from suan.cluster.model import NodeHealth
from suan.sched import WaitCode, decide
from suan.sched.policy import POLICIES, get_policy

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _documented_codes(text: str) -> set[str]:
    """The codes in the first column of a markdown table whose header is `| code |`."""
    table = text.split("| code |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([a-z-]+)` \|", table, re.MULTILINE))


def test_every_wait_code_has_a_docstring_and_is_documented():
    documented = _documented_codes((DOCS / "schedule-json.md").read_text())
    assert documented == {str(code) for code in WaitCode}
    for code in WaitCode:
        assert code.doc, code


def test_a_gang_waiting_on_cordoned_and_down_nodes_says_so():
    nodes = cluster(node("n1"), node("n2", health=NodeHealth.CORDONED),
                    node("n3", health=NodeHealth.DOWN))
    decisions = decide(snapshot(nodes), [job("pair", replicas=2, devices=8)], "fifo")
    wait = decisions.reasons()["pair"]
    assert wait.code == WaitCode.HEALTH
    assert "only n1 ready" in wait.reason
    assert "n2 cordoned" in wait.reason and "n3 down" in wait.reason


def test_a_type_whose_nodes_are_all_down_waits_for_health_not_forever():
    nodes = cluster(node("n1"), node("m1", "910B", health=NodeHealth.DOWN))
    decisions = decide(snapshot(nodes), [job("ascend", devices=8, types=("910B",))], "fifo")
    wait = decisions.reasons()["ascend"]
    assert wait.code == WaitCode.HEALTH and "m1 down" in wait.reason


def test_a_busy_gang_mentions_the_nodes_that_are_not_ready():
    nodes = cluster(node("n1"), node("n2"), node("n3", health=NodeHealth.DOWN))
    busy = running(job("old", devices=8), ("n1", tuple(range(8))))
    decisions = decide(snapshot(nodes, busy), [job("pair", replicas=2, devices=8)], "fifo")
    wait = decisions.reasons()["pair"]
    assert wait.code == WaitCode.CAPACITY and "n3 down" in wait.reason


def test_second_choice_type_says_it_fell_back_and_why():
    nodes = cluster(node("h0", "H100"), node("a0", "A100"))
    busy = running(job("old", devices=8, types=("H100",)), ("h0", tuple(range(8))))
    decisions = decide(snapshot(nodes, busy), [job("j", devices=4, types=("H100", "A100"))],
                       "fifo")
    why = decisions.started()["j"].why
    assert "fell back" in why and "H100" in why and "0 free" in why


def test_first_choice_start_does_not_claim_a_fallback():
    nodes = cluster(node("h0", "H100"), node("a0", "A100"))
    decisions = decide(snapshot(nodes), [job("j", devices=4, types=("H100", "A100"))], "fifo")
    assert "fell back" not in decisions.started()["j"].why


def test_free_but_unusable_shape_prints_the_free_count_not_the_request():
    nodes = cluster(node("n0", rack="r0"), node("n1", rack="r1"))
    busy = [running(job(f"old{i}", devices=5), (f"n{i}", tuple(range(5)))) for i in range(2)]
    decisions = decide(snapshot(nodes, *busy), [job("four", devices=4)], "fifo")
    wait = decisions.reasons()["four"]
    assert wait.code == WaitCode.SHAPE
    assert "6 H100-SXM-80GB are free" in wait.reason
    assert "4 H100-SXM-80GB are free" not in wait.reason


def test_a_replica_larger_than_any_node_is_unschedulable_at_once():
    nodes = cluster(node("n0"), node("n1"))
    decisions = decide(snapshot(nodes), [job("twelve", devices=12)], "default")
    wait = decisions.reasons()["twelve"]
    assert wait.code == WaitCode.UNSCHEDULABLE and "12" in wait.reason


def test_a_replica_larger_than_any_ready_node_but_not_any_registered_waits_for_health():
    nodes = cluster(node("small", devices=4), node("big", health=NodeHealth.CORDONED))
    decisions = decide(snapshot(nodes), [job("eight", devices=8)], "fifo")
    wait = decisions.reasons()["eight"]
    assert wait.code == WaitCode.HEALTH and "big cordoned" in wait.reason


def test_a_type_the_cluster_does_not_have_is_unschedulable():
    decisions = decide(snapshot(cluster(node("n0"))), [job("mlu", types=("MLU590",))],
                       "fifo")
    assert decisions.reasons()["mlu"].code == WaitCode.UNSCHEDULABLE


def test_more_devices_than_the_cluster_registers_is_unschedulable():
    nodes = cluster(node("n0"), node("n1"), node("n2", health=NodeHealth.DOWN))
    decisions = decide(snapshot(nodes), [job("huge", replicas=4, devices=8)], "default")
    wait = decisions.reasons()["huge"]
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "needs 32" in wait.reason and "registers 24" in wait.reason


def test_a_gang_larger_than_any_rack_it_must_sit_in_is_unschedulable():
    """within: rack, 3x8 on racks of 2 nodes: no rack, however healthy, can ever hold it."""
    nodes = cluster(node("a0", rack="ra"), node("a1", rack="ra"),
                    node("b0", rack="rb"), node("b1", rack="rb", health=NodeHealth.DOWN))
    decisions = decide(snapshot(nodes), [job("wide", replicas=3, devices=8, within="rack")],
                       "default")
    wait = decisions.reasons()["wide"]
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "inside one rack" in wait.reason and "largest rack registers 16" in wait.reason
    fits = decide(snapshot(nodes), [job("two", replicas=2, devices=8, within="rack")],
                  "default")
    assert "two" in {start.job.name for start in fits.starts}


def test_a_request_over_its_queues_guarantee_plus_borrow_limit_is_unschedulable():
    from suan.jobs.queue import QueueSpec

    team = QueueSpec("team", guaranteed={"accelerators": 8}, borrow_limit={"accelerators": 4})
    nodes = cluster(node("n0"), node("n1"))
    over = job("over", replicas=2, devices=8, queue="team")
    decisions = decide(snapshot(nodes, queues=(team,)), [over], "default")
    wait = decisions.reasons()["over"]
    assert wait.code == WaitCode.UNSCHEDULABLE and "guarantee plus borrow limit, 12" in wait.reason
    busy = running(job("mine", devices=8, queue="team"), ("n0", tuple(range(8))))
    later = decide(snapshot(nodes, busy, queues=(team,)), [job("more", devices=8,
                                                                queue="team")], "default")
    assert later.reasons()["more"].code == WaitCode.QUOTA  # fits once its own job ends


def test_one_unschedulable_group_makes_the_job_unschedulable():
    from dataclasses import replace

    from suan.jobs.model import ReplicaGroup

    nodes = cluster(node("n0"), node("n1"))
    busy = running(job("old", devices=8), ("n0", tuple(range(8))), ("n1", tuple(range(8))))
    base = job("two-groups", devices=8)
    huge = ReplicaGroup(name="huge", replicas=1, accelerators=16)
    two = replace(base, groups=(replace(base.groups[0], name="small"), huge))
    decisions = decide(snapshot(nodes, busy), [two], "fifo")
    assert decisions.reasons()["two-groups"].code == WaitCode.UNSCHEDULABLE


# ---------------------------------------------------------------------- same-queue preemption
def _full_node(ran_s: float) -> tuple:  # type: ignore[type-arg]
    """An 8-device node held by a job of the default queue that has run `ran_s` seconds,
    long enough on 8 devices to have left the first LAS class (3,600 device-seconds)."""
    nodes = cluster(node("n0", "V100", 8))
    old = job("old", devices=8, attained=40_000.0)
    now = 10_000.0
    return nodes, running(old, ("n0", tuple(range(8))), start=now - ran_s), now


def test_no_same_queue_preemption_before_the_minimum_run_time():
    minimum = get_policy("default").class_preemption_min_run_s
    assert minimum > 0
    nodes, alloc, now = _full_node(minimum - 1)
    decisions = decide(snapshot(nodes, alloc, now=now), [job("new", devices=8)], "default")
    assert not decisions.preemptions
    assert decisions.reasons()["new"].code == WaitCode.CAPACITY


def test_same_queue_preemption_after_the_minimum_run_time_says_how_long_it_ran():
    minimum = get_policy("default").class_preemption_min_run_s
    nodes, alloc, now = _full_node(minimum + 180)
    decisions = decide(snapshot(nodes, alloc, now=now), [job("new", devices=8)], "default")
    [preemption] = decisions.preemptions
    assert preemption.job == "old" and "new" in decisions.started()
    assert "same queue" in preemption.reason and "service class" in preemption.reason
    assert f"min {minimum / 60:.0f}m" in preemption.reason
    assert f"ran {(minimum + 180) / 60:.0f}m" in preemption.reason


def test_same_queue_preemption_is_off_in_every_policy_but_the_time_sharing_ones():
    for policy in POLICIES:
        if policy.order_preemption:
            assert policy.class_preemption_min_run_s > 0, policy.name
        assert "class_preemption_min_run_s" in policy.describe()
    nodes, alloc, now = _full_node(36_000)
    for name in ("priority", "las", "fifo", "backfill"):
        decisions = decide(snapshot(nodes, alloc, now=now), [job("new", devices=8)], name)
        assert not decisions.preemptions, name


def _two_big_jobs(first_duration: float):  # type: ignore[no-untyped-def]
    """A 64-device job from t=0 and another from t=1 on 64 devices: the first leaves the
    first LAS class (3,600 device-seconds) after 56 s."""
    from dataclasses import replace

    from suan.cluster.generate import cluster_from_shorthand
    from suan.sim.simulator import SimConfig, Simulator
    from suan.sim.workload import TraceJob

    trace = [TraceJob("a", 0.0, first_duration, 64), TraceJob("b", 1.0, 100.0, 64)]
    sim = Simulator(trace, cluster_from_shorthand("8x8xV100"),
                    replace(SimConfig(tick_s=None), policy="default"))
    return {state.trace.job_id: state for state in sim.run().jobs}


def test_the_simulator_time_shares_only_after_the_minimum_run():
    minimum = get_policy("default").class_preemption_min_run_s
    short = _two_big_jobs(minimum - 50)
    assert short["a"].preemptions == 0 and short["a"].end == minimum - 50
    long = _two_big_jobs(10 * minimum)
    assert long["a"].preemptions >= 1
    assert long["b"].first_start == minimum


def test_the_control_plane_stores_only_codes_from_the_list():
    source = (Path(__file__).resolve().parent.parent / "suan" / "control" /
              "reconciler.py").read_text()
    single = re.findall(r'^\s+row\.reason_code = "([^"]*)"', source, re.MULTILINE)
    paired = re.findall(r'row\.reason, row\.reason_code = [^\n]*, "([^"]*)"\n', source)
    literals = [*single, *paired]
    assert set(literals) <= {""}, literals
    used = set(re.findall(r"WaitCode\.([A-Z_]+)", source))
    assert used and all(hasattr(WaitCode, name) for name in used)
