"""The packing experiment: vectorised fragmentation equals the scheduler's definition, and
placements behave as their names say on a small cluster."""

from __future__ import annotations

import random

import numpy as np
import pytest

from suan.catalog import default_catalog
from suan.cluster.generate import cluster_from_shorthand
from suan.sched.fragmentation import TaskShape, node_fragmentation
from suan.sim.pack import inflated, run_pack
from suan.sim.packing import PackState, Shapes, choose, fragmentation
from suan.sim.pods import Pod, read_openb_pods


def test_vectorised_fragmentation_matches_the_schedulers_node_fragmentation():
    rng = random.Random(7)
    shapes = [TaskShape(d, m if d == 1 else 1000, c, rng.random())
              for d, m, c in ((1, 500, 4000), (1, 250, 0), (2, 1000, 8000), (8, 1000, 32000),
                              (1, 1000, 16000), (4, 1000, 0), (0, 0, 2000))]
    rows, cpus = [], []
    for _ in range(100):
        devices = rng.choice([1, 2, 4, 8])
        free = [rng.choice([1000, 1000, 0, 500, 250, 700]) for _ in range(devices)]
        rows.append(free + [-1] * (8 - devices))
        cpus.append(rng.choice([0, 2000, 8000, 30000]))
    ours = fragmentation(np.array(rows), np.array(cpus), Shapes(shapes))
    theirs = [node_fragmentation([x for x in r if x >= 0], c, shapes)
              for r, c in zip(rows, cpus, strict=True)]
    assert ours == pytest.approx(theirs)


def small_state() -> PackState:
    return PackState(cluster_from_shorthand("2x4xT4", name="t"), default_catalog())


def test_best_fit_shares_a_partly_used_gpu_and_fgd_keeps_whole_gpus_whole():
    state = small_state()
    half = Pod("half", 1000, 1024, 1, 500)
    state.book(0, half)
    rng = np.random.default_rng(0)
    shapes = Shapes([TaskShape(1, 1000, 0, 0.5), TaskShape(4, 1000, 0, 0.5)])
    for strategy in ("bestfit", "fgd", "fgd-bestfit", "gpu-packing"):
        rows = state.feasible(half)
        assert choose(state, half, rows, strategy, shapes, rng) == 0, strategy


def test_fgd_over_gpus_puts_a_share_on_the_partly_used_gpu():
    from suan.sim.packing import choose_gpu

    state = small_state()
    state.book(1, Pod("quarter", 0, 0, 1, 250), device=2)
    shapes = Shapes([TaskShape(1, 1000, 0, 0.5), TaskShape(1, 750, 0, 0.5)])
    pod = Pod("three-quarters", 0, 0, 1, 750)
    assert choose_gpu(state, pod, state.feasible(pod), "fgd-gpu-bestfit", shapes) == (1, 2)


def test_a_whole_node_job_only_fits_an_empty_node():
    state = small_state()
    state.book(0, Pod("one", 0, 0, 1, 1000))
    assert list(state.feasible(Pod("four", 0, 0, 4, 1000))) == [1]


def test_inflation_clones_up_to_the_factor_and_never_past_capacity():
    pods = [Pod(str(i), 1000, 0, 1, 1000) for i in range(10)]
    assert len(inflated(pods, 42, 1.3, gpus=100, cpu=10**9)) == 13
    assert len(inflated(pods, 42, 1.3, gpus=9, cpu=10**9)) == 11  # 1.3 x 9 GPUs


def test_random_wastes_more_than_best_fit_on_a_fractional_workload():
    cluster = cluster_from_shorthand("8x4xT4", name="t")
    rng = random.Random(1)
    pods = [Pod(str(i), 1000, 1024, 1, rng.choice([250, 500, 1000])) for i in range(60)]
    best = run_pack(cluster, pods, "bestfit", 42)
    scattered = run_pack(cluster, pods, "random", 42)
    assert best.allocated_final_pct >= scattered.allocated_final_pct


def test_openb_pod_lists_read_with_all_columns_and_with_five(tmp_path):
    full = tmp_path / "full.csv"
    full.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos\n"
                    "p0,12000,16384,1,460,V100M16|V100M32,LS\np1,4000,0,0,0,,BE\n")
    five = tmp_path / "five.csv"
    five.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,12000,16384,2,1000\n")
    pods, _ = read_openb_pods(full)
    assert pods[0].gpu_spec == ("V100M16", "V100M32") and pods[0].gpus == pytest.approx(0.46)
    assert pods[1].num_gpu == 0
    assert read_openb_pods(five)[0][0].gpus == 2
