"""Scheduler scenarios: a small cluster, some jobs, the expected placements and reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sched_helpers import cluster, devices_of, job, node, running, snapshot

from suan.cluster.model import NodeHealth
from suan.errors import PolicyError
from suan.jobs.queue import QueueSpec
from suan.plan.jobs import PLANNER_VERSION, AdviceMemo, cluster_types, with_planner_advice
from suan.sched import WaitCode, decide
from suan.sched.policy import POLICIES, Policy, PolicyRegistry, get_policy


def two_racks():
    return cluster(
        node("a0", rack="ra"), node("a1", rack="ra"),
        node("b0", rack="rb"), node("b1", rack="rb"),
    )


def test_gang_is_all_or_nothing():
    decisions = decide(snapshot(two_racks()), [job("big", replicas=5, devices=8)], "fifo")
    assert decisions.starts == []
    [wait] = decisions.pending
    assert wait.code == WaitCode.UNSCHEDULABLE
    assert "needs 40" in wait.reason and "registers 32" in wait.reason


def test_gang_goes_to_the_rack_that_holds_it_whole():
    busy = running(job("old", devices=2), ("a0", (0, 1)))
    decisions = decide(snapshot(two_racks(), busy), [job("pair", replicas=2, devices=8)], "fifo")
    placed = devices_of(decisions, "pair")
    assert {name for name, _ in placed} == {"b0", "b1"}
    assert all(devs == tuple(range(8)) for _, devs in placed)
    assert "rack rb" in decisions.started()["pair"].why


def test_small_job_best_fits_the_fullest_node():
    busy = running(job("old", devices=6), ("b1", tuple(range(6))))
    decisions = decide(snapshot(two_racks(), busy), [job("two", devices=2)], "fifo")
    assert devices_of(decisions, "two") == [("b1", (6, 7))]


def test_replicas_of_one_gang_share_a_node_when_they_fit():
    decisions = decide(snapshot(two_racks()), [job("four", replicas=4, devices=2)], "fifo")
    assert {name for name, _ in devices_of(decisions, "four")} == {"a0"}


def test_kunlunxin_request_of_four_stays_in_one_link_group():
    nodes = cluster(node("x0", "P800"))
    busy = running(job("old", devices=1, types=("P800",)), ("x0", (0,)))
    decisions = decide(snapshot(nodes, busy), [job("four", devices=4, types=("P800",))], "fifo")
    assert devices_of(decisions, "four") == [("x0", (4, 5, 6, 7))]


def test_kunlunxin_four_waits_when_each_group_is_split():
    nodes = cluster(node("x0", "P800"))
    busy = running(job("old", replicas=2, devices=2, types=("P800",)), ("x0", (0, 1)),
                   ("x0", (4, 5)))
    decisions = decide(snapshot(nodes, busy), [job("four", devices=4, types=("P800",))], "fifo")
    assert decisions.starts == []
    assert decisions.pending[0].code == WaitCode.SHAPE


def test_ascend_910c_pairs_take_whole_modules():
    nodes = cluster(node("c0", "910C"))
    busy = running(job("old", devices=1, types=("910C",)), ("c0", (0,)))
    decisions = decide(snapshot(nodes, busy), [job("pair", devices=2, types=("910C",))], "fifo")
    [(_, devices)] = devices_of(decisions, "pair")
    assert devices[0] % 2 == 0 and devices[1] == devices[0] + 1


def test_fractional_requests_share_one_device():
    nodes = cluster(node("n0"))
    jobs = [job("half-a", share=0.5, submit=0), job("half-b", share=0.5, submit=1)]
    decisions = decide(snapshot(nodes), jobs, "fifo")
    assert devices_of(decisions, "half-a")[0][1] == devices_of(decisions, "half-b")[0][1]
    assert decisions.started()["half-a"].replicas[0].milli == 500


def test_cordoned_and_down_nodes_take_nothing():
    nodes = cluster(node("ok"), node("cordoned", health=NodeHealth.CORDONED),
                    node("down", health=NodeHealth.DOWN))
    decisions = decide(snapshot(nodes), [job("a", devices=8), job("b", devices=8, submit=1)],
                       "fifo-besteffort")
    assert devices_of(decisions, "a")[0][0] == "ok"
    assert decisions.reasons()["b"].code == WaitCode.CAPACITY


def test_replica_larger_than_any_node_is_unschedulable():
    decisions = decide(snapshot(two_racks()), [job("wide", devices=16)], "fifo")
    assert decisions.pending[0].code == WaitCode.UNSCHEDULABLE
    assert "at most 8" in decisions.pending[0].reason


def test_within_rack_constraint_names_the_best_rack():
    busy = running(job("old", devices=8), ("a0", tuple(range(8))), ("b0", tuple(range(8))))
    decisions = decide(snapshot(two_racks(), busy),
                       [job("rackjob", replicas=2, devices=8, within="rack")], "fifo")
    wait = decisions.pending[0]
    assert wait.code == WaitCode.CONSTRAINT
    assert "no rack has 16 free" in wait.reason and "with 8" in wait.reason


def test_within_rack_larger_than_any_rack_is_unschedulable():
    decisions = decide(snapshot(two_racks()),
                       [job("rackjob", replicas=3, devices=8, within="rack")], "fifo")
    wait = decisions.pending[0]
    assert wait.code == WaitCode.UNSCHEDULABLE and "largest rack registers 16" in wait.reason


def test_preference_list_falls_back_to_the_next_type():
    nodes = cluster(node("h0"), node("s0", "910B", rack="r1"))
    busy = running(job("old", devices=8), ("h0", tuple(range(8))))
    decisions = decide(snapshot(nodes, busy),
                       [job("pref", devices=8, types=("H100", "910B"))], "fifo")
    assert devices_of(decisions, "pref")[0][0] == "s0"
    assert decisions.started()["pref"].accelerators == ("Ascend-910B",)


def test_quota_without_borrowing_makes_the_second_job_wait():
    queues = (QueueSpec("team-a", guaranteed={"accelerators": 8},
                        borrow_limit={"accelerators": 0}),)
    jobs = [job("a1", devices=8, queue="team-a"), job("a2", devices=8, queue="team-a", submit=1)]
    decisions = decide(snapshot(two_racks(), queues=queues), jobs, "fifo-besteffort")
    assert "a1" in decisions.started()
    wait = decisions.reasons()["a2"]
    assert wait.code == WaitCode.QUOTA
    assert "queue team-a" in wait.reason and "would reach 16" in wait.reason


def test_borrowing_uses_an_idle_sibling_guarantee_but_not_what_it_keeps():
    parent = QueueSpec("org")
    lends = (parent,
             QueueSpec("a", parent="org", guaranteed={"accelerators": 16}),
             QueueSpec("b", parent="org", guaranteed={"accelerators": 16}))
    keeps = (parent,
             QueueSpec("a", parent="org", guaranteed={"accelerators": 16}),
             QueueSpec("b", parent="org", guaranteed={"accelerators": 16},
                       lend_limit={"accelerators": 0}))
    jobs = [job(f"a{i}", devices=8, queue="a", submit=i) for i in range(4)]
    lent = decide(snapshot(two_racks(), queues=lends), jobs, "fifo-besteffort")
    assert len(lent.starts) == 4
    kept = decide(snapshot(two_racks(), queues=keeps), jobs, "fifo-besteffort")
    assert len(kept.starts) == 2
    assert all(w.code == WaitCode.QUOTA and "borrowing" in w.reason for w in kept.pending)


def test_reclaim_takes_back_a_guarantee_from_a_borrowing_queue():
    queues = (QueueSpec("org"),
              QueueSpec("a", parent="org", guaranteed={"accelerators": 16}),
              QueueSpec("b", parent="org", guaranteed={"accelerators": 16}))

    def borrowed(priority: int):  # type: ignore[no-untyped-def]
        return [running(job(f"a{i}", devices=8, queue="a", priority=priority),
                        (n, tuple(range(8))), start=100.0 * i)
                for i, n in enumerate(["a0", "a1", "b0", "b1"])]

    decisions = decide(snapshot(two_racks(), *borrowed(0), queues=queues, now=1000.0),
                       [job("b-job", devices=8, queue="b")], "default")
    assert "b-job" in decisions.started()
    [victim] = decisions.preemptions
    assert victim.for_job == "b-job" and "reclaimed for queue b" in victim.reason
    # The youngest borrower loses the least work.
    assert victim.job == "a3"
    # A borrower of higher priority than the claimant is not reclaimed.
    decisions = decide(snapshot(two_racks(), *borrowed(5), queues=queues, now=1000.0),
                       [job("b-job", devices=8, queue="b")], "default")
    assert decisions.preemptions == []
    assert decisions.reasons()["b-job"].code in (WaitCode.CAPACITY, WaitCode.RESERVATION)


def test_priority_preemption_picks_the_victim_with_least_work_since_checkpoint():
    nodes = cluster(node("n0"), node("n1"))
    old = running(job("old", devices=8, checkpoint=3600.0), ("n0", tuple(range(8))), start=0.0,
                  checkpoint=4990.0)
    fresh = running(job("fresh", devices=8), ("n1", tuple(range(8))), start=3000.0)
    decisions = decide(snapshot(nodes, old, fresh, now=5000.0),
                       [job("urgent", devices=8, priority=10)], "priority")
    [victim] = decisions.preemptions
    assert victim.job == "old"  # 10 s lost since its checkpoint, against 2000 s for "fresh"
    assert "priority 10 > 0" in victim.reason
    assert devices_of(decisions, "urgent")[0][0] == "n0"


def test_non_preemptible_and_equal_priority_jobs_are_never_victims():
    nodes = cluster(node("n0"))
    keep = running(job("keep", devices=8, preemptible=False), ("n0", tuple(range(8))))
    decisions = decide(snapshot(nodes, keep), [job("urgent", devices=8, priority=10)],
                       "priority")
    assert decisions.preemptions == [] and decisions.starts == []
    peer = running(job("peer", devices=8, priority=10), ("n0", tuple(range(8))))
    decisions = decide(snapshot(nodes, peer), [job("urgent", devices=8, priority=10)],
                       "priority")
    assert decisions.preemptions == []


def test_preemption_frees_only_as_much_as_needed():
    nodes = cluster(node("n0"))
    smalls = [running(job(f"s{i}", devices=2), ("n0", (2 * i, 2 * i + 1)), start=10.0 * i)
              for i in range(4)]
    decisions = decide(snapshot(nodes, *smalls, now=100.0), [job("hi", devices=4, priority=1)],
                       "priority")
    assert len(decisions.preemptions) == 2


def test_easy_backfill_lets_short_jobs_run_but_not_delay_the_head():
    nodes = cluster(node("n0"), node("n1", rack="r1"))
    busy = running(job("busy", devices=8, estimate=3600.0), ("n0", tuple(range(8))))
    jobs = [
        job("head", replicas=2, devices=8, submit=0),
        job("short", devices=4, submit=1, estimate=600.0),
        job("long", devices=4, submit=2, estimate=7200.0),
    ]
    decisions = decide(snapshot(nodes, busy), jobs, "backfill")
    reasons = decisions.reasons()
    assert reasons["head"].code == WaitCode.RESERVATION
    assert "t=3600" in reasons["head"].reason
    assert "short" in decisions.started()
    assert reasons["long"].code == WaitCode.RESERVED
    assert decisions.reservation is not None and decisions.reservation["job"] == "head"


def test_strict_fifo_blocks_behind_the_head():
    nodes = cluster(node("n0"))
    busy = running(job("busy", devices=4), ("n0", (0, 1, 2, 3)))
    jobs = [job("head", devices=8, submit=0), job("small", devices=1, submit=1)]
    strict = decide(snapshot(nodes, busy), jobs, "fifo")
    assert strict.reasons()["small"].code == WaitCode.HEAD_OF_LINE
    besteffort = decide(snapshot(nodes, busy), jobs, "fifo-besteffort")
    assert "small" in besteffort.started()


def test_fair_share_interleaves_queues_by_dominant_share():
    queues = (QueueSpec("a"), QueueSpec("b"))
    jobs = [job(f"a{i}", devices=8, queue="a", submit=i) for i in range(4)]
    jobs += [job(f"b{i}", devices=8, queue="b", submit=10 + i) for i in range(4)]
    fair = decide(snapshot(two_racks(), queues=queues), jobs, "fairshare")
    assert sorted(s.job.queue for s in fair.starts) == ["a", "a", "b", "b"]
    plain = decide(snapshot(two_racks(), queues=queues), jobs, "fifo-besteffort")
    assert sorted(s.job.queue for s in plain.starts) == ["a", "a", "a", "a"]


@pytest.mark.parametrize(("policy", "first"), [("sjf", "short"), ("fifo", "long"),
                                               ("las", "fresh")])
def test_queue_orders(policy: str, first: str):
    nodes = cluster(node("n0"))
    jobs = [
        job("long", devices=8, submit=0, duration=9000, attained=40_000),
        job("short", devices=8, submit=1, duration=60, attained=40_000),
        job("fresh", devices=8, submit=2, duration=5000),
    ]
    decisions = decide(snapshot(nodes), jobs, policy)
    assert [s.job.name for s in decisions.starts] == [first]


def test_elastic_job_starts_with_its_floor_when_the_full_size_does_not_fit():
    decisions = decide(snapshot(two_racks()),
                       [job("elastic", replicas=6, devices=8, min_replicas=2)], "fifo")
    assert len(decisions.started()["elastic"].replicas) == 2


def test_same_input_same_decisions():
    jobs = [job(f"j{i}", replicas=1 + i % 3, devices=[1, 2, 4, 8][i % 4], submit=i)
            for i in range(12)]
    first = decide(snapshot(two_racks()), jobs, "default").to_dict()
    second = decide(snapshot(two_racks()), jobs, "default").to_dict()
    assert first == second


def test_every_job_is_started_or_has_a_reason():
    jobs = [job(f"j{i}", replicas=1 + i % 3, devices=[1, 2, 4, 8][i % 4], submit=i)
            for i in range(12)]
    decisions = decide(snapshot(two_racks()), jobs, "default")
    decided = set(decisions.started()) | set(decisions.reasons())
    assert decided == {j.name for j in jobs}
    assert all(w.reason for w in decisions.pending)


def test_registry_refuses_duplicates_and_names_the_known_policies():
    registry = PolicyRegistry()
    policy = Policy("x", "test", POLICIES.get("fifo").order, POLICIES.get("fifo").placer)
    registry.register(policy)
    with pytest.raises(PolicyError, match="already registered"):
        registry.register(policy)
    with pytest.raises(PolicyError, match=r"known policies: .*default"):
        get_policy("nope")


def test_ranks_follow_the_topology_so_neighbours_share_a_rack():
    nodes = cluster(*(node(f"n{r}{i}", rack=f"r{r}", block="b0") for r in range(3)
                      for i in range(2)))
    busy = running(job("old", devices=8), ("n00", tuple(range(8))))
    decisions = decide(snapshot(nodes, busy), [job("wide", replicas=4, devices=8)], "fifo")
    racks = [nodes.node(name).rack for name, _ in devices_of(decisions, "wide")]
    assert racks == sorted(racks)
    assert len(set(racks)) == 2


def test_gang_stays_inside_one_supernode_when_one_can_hold_it():
    # Two NVL72-style supernodes of 4-GPU nodes spread over the same two racks.
    nodes = cluster(*(node(f"s{s}n{i}", "GB200-NVL72", rack=f"r{i % 2}", supernode=f"sn{s}")
                      for s in range(2) for i in range(4)))
    busy = running(job("old", devices=4, types=("GB200-NVL72",)), ("s0n0", (0, 1, 2, 3)))
    decisions = decide(snapshot(nodes, busy),
                       [job("nvl", replicas=4, devices=4, types=("GB200-NVL72",))], "fifo")
    placed = {name for name, _ in devices_of(decisions, "nvl")}
    assert placed == {f"s1n{i}" for i in range(4)}
    assert "supernode sn1" in decisions.started()["nvl"].why


def test_degraded_nodes_take_work_only_when_ready_ones_cannot():
    nodes = cluster(node("sick", health=NodeHealth.DEGRADED), node("well"))
    busy = running(job("old", devices=2), ("well", (0, 1)))
    jobs = [job("first", devices=4, submit=0), job("second", devices=4, submit=1)]
    decisions = decide(snapshot(nodes, busy), jobs, "fifo")
    assert devices_of(decisions, "first")[0][0] == "well"
    assert devices_of(decisions, "second")[0][0] == "sick"


def test_a_job_naming_its_model_takes_the_type_the_planner_finds_fastest():
    nodes = cluster(node("a0", "A100-80GB"), node("h0", "H100", rack="r1"))
    plain = job("plain", replicas=1, devices=8, types=("A100-80GB", "H100"))
    planned = replace(plain, name="planned", model="llama3-8b")
    by_order = decide(snapshot(nodes), [plain], "fifo")
    assert by_order.started()["plain"].accelerators == ("A100-80GB",)
    advised = with_planner_advice(planned, cluster_types(nodes))
    assert advised.planner_version == PLANNER_VERSION
    by_planner = decide(snapshot(nodes), [advised], "fifo")
    start = by_planner.started()["planned"]
    assert start.accelerators == ("H100-SXM-80GB",)
    assert "planner's tokens/s for llama3-8b" in start.why
    # Unadvised, the scheduler asks no planner: the listed order stands.
    assert decide(snapshot(nodes), [planned], "fifo").started()["planned"].accelerators == (
        "A100-80GB",)


def test_kept_advice_is_last_passs_copy_until_the_job_or_the_types_change():
    nodes = cluster(node("a0", "A100-80GB"), node("h0", "H100", rack="r1"))
    plain = job("plain", replicas=1, devices=8, types=("A100-80GB", "H100"))
    planned = replace(plain, name="planned", model="llama3-8b")
    types = cluster_types(nodes)
    memo = AdviceMemo()
    first = memo.advise([plain, planned], types)
    assert first[0] is plain and first[1] == with_planner_advice(planned, types)
    second = memo.advise([plain, planned], types)
    assert second[1] is first[1]
    resubmitted = replace(planned, submit_time=5.0)
    assert memo.advise([resubmitted], types)[0] is not first[1]
    kept = memo.advise([resubmitted], types)[0]
    fewer = ("H100-SXM-80GB",)
    again = memo.advise([resubmitted], fewer)[0]
    assert again is not kept and again == with_planner_advice(resubmitted, fewer)


def test_a_cycle_on_a_kept_ledger_decides_like_a_fresh_one_and_leaves_it_as_booked():
    from suan.catalog import default_catalog
    from suan.jobs.queue import DEFAULT_QUEUE
    from suan.sched import CarriedState, WarmLedger, schedule

    busy = running(job("old", devices=6), ("a0", tuple(range(6))))
    kept = WarmLedger(two_racks(), (DEFAULT_QUEUE,), default_catalog())
    kept.book(busy)
    snap = kept.snapshot(50.0)
    jobs = [job(f"j{i}", replicas=1 + i % 2, devices=[2, 8][i % 2], submit=i) for i in range(6)]
    fresh, fresh_state = schedule(snap, jobs, "default")
    reused, state = kept.run_cycle(snap, jobs, "default")
    assert reused.to_dict() == fresh.to_dict() and state == fresh_state == CarriedState(cycles=1)
    again, _ = kept.run_cycle(kept.snapshot(50.0), jobs, "default", state)
    assert again.to_dict() == fresh.to_dict()
    assert list(kept.live) == ["old"]
    with pytest.raises(ValueError, match="booked allocations"):
        kept.run_cycle(snapshot(two_racks(), now=50.0), jobs, "default")


def test_cpu_only_replicas_go_to_cpu_nodes_first():
    from suan.cluster.model import Node
    from suan.jobs.model import Job, ReplicaGroup

    cpu_node = Node("cpu0", None, 0, (), cpu_milli=64_000, memory_mib=1 << 18)
    nodes = cluster(node("g0"), cpu_node)
    prep = Job("prep", (ReplicaGroup(replicas=2, accelerators=0, cpu_milli=16_000,
                                     memory_mib=1024),))
    big = Job("big-prep", (ReplicaGroup(replicas=1, accelerators=0, cpu_milli=100_000),))
    decisions = decide(snapshot(nodes), [prep, big], "fifo-besteffort")
    assert [r.node for r in decisions.started()["prep"].replicas] == ["cpu0", "cpu0"]
    assert decisions.started()["big-prep"].replicas[0].node == "g0"
