"""The scheduler's seam: state carried between cycles, purity, and the policies every caller
can run (the rank policies that used to live in the simulator)."""

from __future__ import annotations

import builtins
import gc
import io
import json
from dataclasses import dataclass, field, replace

import pytest
from sched_helpers import cluster, job, node, running, snapshot

from suan.catalog import default_catalog
from suan.errors import PolicyError, SpecError
from suan.jobs.queue import DEFAULT_QUEUE
from suan.plan.jobs import cluster_types, with_planner_advice
from suan.plan.use import clear_speed_cache
from suan.sched import (
    POLICIES,
    CarriedState,
    Policy,
    WarmLedger,
    decide,
    get_policy,
    schedule,
)
from suan.sched.phases import QUEUE
from suan.sched.placement import Placer
from suan.sched.rank import LasRank

# --- carried state ---------------------------------------------------------------------------


def test_each_cycle_hands_the_next_a_new_state_and_leaves_the_old_one_as_it_was():
    nodes = cluster(node("n0"))
    first = CarriedState()
    _, second = schedule(snapshot(nodes), [job("a")], "fifo", first)
    _, third = schedule(snapshot(nodes), [job("b")], "fifo", second)
    assert (first.cycles, second.cycles, third.cycles) == (0, 1, 2)
    with pytest.raises(AttributeError):
        third.cycles = 5  # type: ignore[misc]


def test_the_state_round_trips_as_json_and_drops_no_decision_when_rebuilt():
    nodes = cluster(node("n0"))
    _, state = schedule(snapshot(nodes), [job("a")], "fifo", CarriedState())
    text = json.dumps(state.to_dict())
    assert CarriedState.from_dict(json.loads(text)) == state == CarriedState(cycles=1)
    again, _ = schedule(snapshot(nodes), [job("b")], "fifo", CarriedState.from_dict(
        json.loads(text)))
    fresh, _ = schedule(snapshot(nodes), [job("b")], "fifo", None)
    assert list(again.started()) == list(fresh.started()) == ["b"]


def test_a_malformed_state_names_the_field():
    with pytest.raises(SpecError, match="cycles"):
        CarriedState.from_dict({"cycles": -2})
    with pytest.raises(SpecError, match="parked"):
        CarriedState.from_dict({"cycles": 1, "parked": []})


# --- purity -----------------------------------------------------------------------------------


@dataclass
class WatchingPlacer:
    """A placement plugin that notes whether the garbage collector is on while it runs."""

    inner: Placer
    collector_on: list[bool] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def place(self, ledger, ask, ctx):  # type: ignore[no-untyped-def]
        self.collector_on.append(gc.isenabled())
        return self.inner.place(ledger, ask, ctx)


def test_a_cycle_opens_no_file_reads_no_global_catalog_and_leaves_the_collector_alone(
        monkeypatch):
    nodes = cluster(node("a0", "A100-80GB"), node("h0", "H100", rack="r1"), node("h1", "H100"))
    planned = replace(job("planned", devices=8, types=("A100-80GB", "H100")),
                      model="llama3-8b")
    unadvised = replace(planned, name="unadvised", submit_time=1.0)
    pending = [with_planner_advice(planned, cluster_types(nodes)), unadvised,
               job("big", replicas=4, devices=8, priority=2), job("small", devices=2)]
    the_snapshot = snapshot(nodes, running(job("old", devices=8), ("h1", tuple(range(8)))),
                            now=100.0)
    clear_speed_cache()  # a planner call would read the model's file again
    default_catalog.cache_clear()  # a cycle reading the global catalog would load its file
    opened: list[object] = []
    real_open = io.open

    def watching_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(args[0] if args else kwargs.get("file"))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(builtins, "open", watching_open)
    monkeypatch.setattr(io, "open", watching_open)
    watched = []
    for policy in POLICIES:
        placer = WatchingPlacer(policy.placer)
        decisions, _ = schedule(the_snapshot, pending, replace(policy, placer=placer))
        watched.append((policy.name, placer.collector_on))
        assert decisions.started()["planned"].accelerators == ("H100-SXM-80GB",), policy.name
    monkeypatch.undo()
    assert opened == []
    assert all(on and all(on) for _, on in watched), watched
    assert "planner's tokens/s" in decisions.started()["planned"].why


# --- policies every caller can run ---------------------------------------------------------------


def test_the_rank_policies_are_registered_for_every_caller():
    for name in ("las-preemptive", "srtf-preemptive"):
        policy = get_policy(name)
        assert policy.rank is not None and [p.name for p in policy.phases] == ["rank", "queue"]
        assert policy.describe()["rank"] == policy.rank.name


def test_a_rank_needs_the_rank_phase_first():
    fifo = get_policy("fifo")
    with pytest.raises(PolicyError, match="rank phase"):
        Policy("broken", "rank without its phase", fifo.order, fifo.placer, rank=LasRank(),
               phases=(QUEUE,))


def test_las_preemptive_lets_a_fresh_job_preempt_one_whose_service_passed_a_threshold():
    nodes = cluster(node("n0"))
    # 8 devices for 500 s: 4,000 device-seconds, past the first threshold (3,600).
    long_runner = running(job("long", devices=8), ("n0", tuple(range(8))), start=0.0)
    fresh = job("fresh", devices=8, submit=400.0)
    decisions = decide(snapshot(nodes, long_runner, now=500.0), [fresh], "las-preemptive")
    [preemption] = decisions.preemptions
    assert (preemption.job, preemption.for_job) == ("long", "fresh")
    assert decisions.started()["fresh"].job is fresh  # the caller's job, not the ranked view
    # Before the threshold both are in the first level: no preemption.
    early = decide(snapshot(nodes, long_runner, now=100.0), [fresh], "las-preemptive")
    assert early.preemptions == [] and early.starts == []


def test_srtf_preemptive_preempts_the_job_with_more_time_left():
    nodes = cluster(node("n0"))
    slow = running(job("slow", devices=8, duration=10_000.0), ("n0", tuple(range(8))))
    quick = job("quick", devices=8, duration=600.0, submit=10.0)
    decisions = decide(snapshot(nodes, slow, now=100.0), [quick], "srtf-preemptive")
    assert [p.job for p in decisions.preemptions] == ["slow"]
    # Live, the runtime estimate stands in for the oracle duration.
    estimated = running(job("slow", devices=8, estimate=10_000.0), ("n0", tuple(range(8))))
    live = decide(snapshot(nodes, estimated, now=100.0), [job("quick", devices=8,
                                                                estimate=600.0)],
                  "srtf-preemptive")
    assert [p.job for p in live.preemptions] == ["slow"]
    # A job that says nothing of its length never preempts one that does.
    unknown = decide(snapshot(nodes, estimated, now=100.0), [job("unknown", devices=8)],
                     "srtf-preemptive")
    assert unknown.preemptions == [] and unknown.starts == []


@pytest.mark.parametrize("policy", ["las-preemptive", "srtf-preemptive", "default"])
def test_a_kept_ledger_gives_the_decisions_of_a_fresh_cycle(policy):
    nodes = cluster(node("n0"), node("n1"))
    kept = WarmLedger(nodes, (DEFAULT_QUEUE,), default_catalog())
    for alloc in (running(job("a", devices=4, duration=9_000.0, attained=5_000.0),
                          ("n0", (0, 1, 2, 3)), start=0.0),
                  running(job("b", devices=8, duration=400.0), ("n1", tuple(range(8))),
                          start=50.0)):
        kept.book(alloc)
    pending = [job(f"w{i}", devices=(2, 4, 8)[i % 3], duration=100.0 * (i + 1),
                   attained=2_000.0 * (i % 3), submit=float(i)) for i in range(6)]
    the_snapshot = kept.snapshot(1_000.0)
    warm, _ = kept.run_cycle(the_snapshot, pending, policy)
    cold, _ = schedule(the_snapshot, pending, policy)
    assert warm.to_dict() == cold.to_dict()


def test_a_kept_ledger_notices_a_running_job_cross_a_las_threshold_between_cycles():
    nodes = cluster(node("n0"))
    kept = WarmLedger(nodes, (DEFAULT_QUEUE,), default_catalog())
    kept.book(running(job("long", devices=8), ("n0", tuple(range(8))), start=0.0))
    fresh = [job("fresh", devices=8, submit=10.0)]
    seen = []
    for now in (100.0, 449.0, 451.0, 2_000.0):  # 8 devices pass 3,600 device-seconds at 450
        warm, _ = kept.run_cycle(kept.snapshot(now), fresh, "las-preemptive")
        cold, _ = schedule(kept.snapshot(now), fresh, "las-preemptive")
        assert warm.to_dict() == cold.to_dict(), now
        seen.append([p.job for p in warm.preemptions])
    assert seen == [[], [], ["long"], ["long"]]
