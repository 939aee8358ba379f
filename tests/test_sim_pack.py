"""The packing experiment: the paper's typical pods and fragmentation, the six placements of
the FGD paper and ours (scheduler placers, `suan.sched.packing`) worked out by hand on small
clusters, workload tuning and the headline figure."""

from __future__ import annotations

import random

import numpy as np
import pytest

from suan.catalog import default_catalog
from suan.cluster.generate import cluster_from_shorthand
from suan.cluster.model import Cluster, Node
from suan.cluster.snapshot import Snapshot
from suan.sched.fragmentation import TaskShape, node_fragmentation
from suan.sched.ledger import Ledger
from suan.sched.lookahead import typed_shortage_growth
from suan.sched.packing import (
    PackContext,
    Shapes,
    Want,
    fragmentation,
    sigmoid_score,
    view_of,
)
from suan.sim.pack import at_arrived, inflated, placer, pod_ask, published_for, run_pack
from suan.sim.pods import Pod, read_openb_pods


def cluster(*nodes: tuple[str, int, int]) -> Cluster:
    """Nodes of (GPU model, GPUs, CPU milli), named n0, n1, ..."""
    return Cluster([Node(f"n{i}", model, gpus, (tuple(range(gpus)),), cpu, 1 << 20)
                    for i, (model, gpus, cpu) in enumerate(nodes)])


class State:
    """A ledger over small nodes and the tie order of its placements."""

    def __init__(self, *nodes: tuple[str, int, int], order: tuple[int, ...] | None = None):
        self.ledger = Ledger(Snapshot(cluster(*nodes)), default_catalog())
        self.rank = None if order is None else np.argsort(np.array(order))

    def book(self, row: int, pod: Pod, device: int | None = None) -> None:
        """Put the pod on node `row`: a share on `device` (default: the tightest GPU), whole
        GPUs on the first free ones."""
        free = self.ledger.free[row]
        if pod.num_gpu and pod.gpu_milli < 1000:
            if device is None:
                device = min((share, d) for d, share in enumerate(free)
                             if share >= pod.gpu_milli)[1]
            devices: tuple[int, ...] = (device,)
        else:
            devices = tuple(d for d, share in enumerate(free) if share == 1000)[: pod.num_gpu]
        self.ledger.take(row, devices, pod.gpu_milli, pod.cpu_milli, pod.memory_mib)
        view_of(self.ledger).booked(self.ledger, row, Want(pod.cpu_milli, pod.memory_mib,
                                                           pod.num_gpu, pod.gpu_milli))

    def place(self, pod: Pod, strategy: str, shapes: Shapes, seed: int = 0
              ) -> tuple[int, int | None]:
        """(node, device or None for whole GPUs and CPU-only pods) the placer books."""
        ctx = PackContext(seed=seed, shapes=shapes, tie_rank=self.rank,
                          generator=np.random.default_rng(seed))
        fit = placer(strategy).place(self.ledger, pod_ask(self.ledger, pod, {}), ctx)
        assert not isinstance(fit, str), fit
        row, devices = fit.slots[0]
        return row, devices[0] if pod.num_gpu and pod.gpu_milli < 1000 else None


def state_of(*nodes: tuple[str, int, int], order: tuple[int, ...] | None = None) -> State:
    """A state whose tie order is `order` (node indexes, first wins)."""
    return State(*nodes, order=order)


def place(state: State, pod: Pod, strategy: str, shapes: Shapes) -> tuple[int, int | None]:
    return state.place(pod, strategy, shapes)


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


def test_typical_pods_are_the_most_common_requests_covering_the_share():
    pods = ([Pod("a", 4000, 0, 1, 1000)] * 5 + [Pod("b", 2000, 0, 1, 500)] * 3
            + [Pod("c", 1000, 0, 0, 0), Pod("d", 0, 0, 2, 1000, ("T4",))])
    most = Shapes.typical(pods, coverage=0.8)
    assert list(most.weight) == pytest.approx([5 / 8, 3 / 8]) and most.cpu_only == 0
    every = Shapes.typical(pods)  # 95 %: ties by the larger request, so the CPU pod first
    assert list(every.weight) == pytest.approx([0.5, 0.3, 0.1]) and every.cpu_only == 0.1
    assert list(every.cpu) == [4000, 2000, 100]  # no CPU request counts as 100 milli
    assert every.specs == [(), (), ("T4",)]
    assert every.cpu_per_gpu == pytest.approx(27000 / 8500)


def test_a_shape_for_another_gpu_model_and_cpu_only_shapes_count_all_free_gpus():
    state = state_of(("T4", 2, 64000), ("P100", 2, 64000))
    shapes = Shapes([TaskShape(1, 1000, 0, 0.5)], specs=[("P100",)], cpu_only=0.5)
    assert list(view_of(state.ledger).fragments(shapes)) == pytest.approx([0.5 * 2000 + 0.5 * 2000,
                                                           0.5 * 2000])


def test_fgd_rounds_its_score_so_ties_go_to_the_node_first_in_the_tie_order():
    assert list(sigmoid_score(np.array([10.0, 30.0, -200.0, -np.inf]))) == [50, 50, 45, -1]
    shapes = Shapes([TaskShape(1, 500, 0, 1.0)])
    half = Pod("half", 0, 0, 1, 500)
    for order, expected in (((0, 1), (0, 1)), ((1, 0), (1, 0))):
        state = state_of(("T4", 4, 64000), ("T4", 4, 64000), order=order)
        state.book(0, Pod("third", 0, 0, 1, 300), device=0)
        # node 0, GPU 0 leaves a 200 share no 500 pod can use (score 45); GPU 1 of node 0
        # and any GPU of node 1 leave nothing unusable (50): the tie order decides.
        assert place(state, half, "fgd", shapes) == expected


def test_fgd_ahead_keeps_cpu_for_the_gpus_of_a_cpu_poor_node():
    shapes = Shapes([TaskShape(1, 1000, 2000, 1.0)])  # 2 milli CPU per milli GPU
    cpu_pod = Pod("cpu", 6000, 0, 0, 0)
    # the CPU-poor node 0 still has 2000 milli CPU for a GPU pod afterwards: FGD sees no
    # fragmentation and follows the tie order; 1000 milli GPU of it would be stranded.
    assert place(state_of(("T4", 2, 8000), ("T4", 2, 64000), order=(0, 1)), cpu_pod, "fgd",
                 shapes) == (0, None)
    assert place(state_of(("T4", 2, 8000), ("T4", 2, 64000), order=(0, 1)), cpu_pod,
                 "fgd-ahead", shapes) == (1, None)


def test_gpu_packing_prefers_a_shared_gpu_then_a_used_node_then_an_idle_one():
    shapes = Shapes([])
    state = state_of(("T4", 4, 64000), ("T4", 4, 64000), ("T4", 4, 64000), order=(2, 1, 0))
    state.book(0, Pod("share", 0, 0, 1, 300), device=0)
    state.book(1, Pod("whole", 0, 0, 1, 1000))
    assert place(state, Pod("half", 0, 0, 1, 500), "gpu-packing", shapes) == (0, 0)
    assert place(state, Pod("one", 0, 0, 1, 1000), "gpu-packing", shapes)[0] == 1
    assert place(state, Pod("cpu", 1000, 0, 0, 0), "gpu-packing", shapes)[0] == 2


def test_gpu_clustering_puts_a_pod_with_pods_of_its_own_kind():
    shapes = Shapes([])
    state = state_of(("T4", 4, 64000), ("T4", 4, 64000), ("T4", 4, 64000), order=(2, 0, 1))
    state.book(0, Pod("share", 0, 0, 1, 300))
    state.book(1, Pod("whole", 0, 0, 1, 1000))
    assert place(state, Pod("another share", 0, 0, 1, 500), "gpu-clustering", shapes)[0] == 0
    assert place(state, Pod("another whole", 0, 0, 1, 1000), "gpu-clustering", shapes)[0] == 1
    assert place(state, Pod("two", 0, 0, 2, 1000), "gpu-clustering", shapes)[0] == 2


def test_best_fit_and_dot_product_fill_the_fuller_node():
    shapes = Shapes([])
    for strategy in ("bestfit", "dotprod"):
        state = state_of(("T4", 4, 64000), ("T4", 4, 64000), order=(0, 1))
        state.book(1, Pod("busy", 32000, 0, 2, 1000))
        assert place(state, Pod("one", 8000, 0, 1, 1000), strategy, shapes)[0] == 1, strategy


def test_random_takes_a_feasible_node_and_a_gpu_that_fits():
    for seed in range(10):
        state = state_of(("T4", 2, 64000), ("T4", 2, 64000))
        state.book(0, Pod("one", 0, 0, 1, 1000), device=None)
        state.book(1, Pod("most", 0, 0, 1, 900), device=0)
        state.book(1, Pod("other", 0, 0, 1, 1000), device=None)
        assert state.place(Pod("x", 0, 0, 1, 500), "random", Shapes([]), seed) == (0, 1)


def test_a_whole_node_job_only_fits_an_empty_node():
    state = State()
    state.ledger = Ledger(Snapshot(cluster_from_shorthand("2x4xT4", name="t")),
                          default_catalog())
    state.book(0, Pod("one", 0, 0, 1, 1000))
    four = Want(0, 0, 4, 1000)
    assert list(view_of(state.ledger).feasible(four, np.arange(2))) == [1]


def test_tuning_clones_random_pods_up_to_the_factor_of_the_gpus():
    pods = [Pod(str(i), 1000, 0, 1, 1000) for i in range(10)]
    assert len(inflated(pods, 42, 1.3, gpus=10)) == 13
    assert len(inflated(pods, 42, 1.3, gpus=5)) == 6  # 10 GPUs asked: pods dropped to 6.5
    cpu_only = [Pod(str(i), 1000, 0, 0, 0) for i in range(3)]
    assert len(inflated(cpu_only, 42, 1.3, gpus=10)) == 3


def test_the_headline_is_the_mean_allocation_where_arrivals_round_to_the_level():
    arrived = np.array([99.4, 99.6, 100.2, 100.6])
    assert at_arrived(arrived, np.array([90.0, 91.0, 92.0, 93.0]), 100) == 91.5
    assert at_arrived(np.array([98.0, 101.2]), np.array([80.0, 81.0]), 100) == 81.0
    assert np.isnan(at_arrived(np.array([50.0]), np.array([50.0]), 100))


def test_random_wastes_more_than_fgd_on_a_fractional_workload():
    nodes = cluster_from_shorthand("8x4xT4", name="t")
    rng = random.Random(1)
    pods = [Pod(str(i), 1000, 1024, 1, rng.choice([250, 500, 1000])) for i in range(60)]
    packed = run_pack(nodes, pods, "fgd", 42)
    scattered = run_pack(nodes, pods, "random", 42)
    assert packed.allocated_final_pct >= scattered.allocated_final_pct
    assert packed.placed + packed.failed == len(inflated(pods, 42, 1.3, 32))


def test_published_figures_are_found_for_a_variant_pod_list(tmp_path):
    folder = tmp_path / "fgd_atc23_published"
    folder.mkdir()
    (folder / "summary_at_arrived_100pct.csv").write_text(
        "workload,policy,unalloc_gpu_pct_at_arrived100_mean\n"
        "openb_pod_list_cpu050,FGD,5.0\nopenb_pod_list_default,FGD,4.77\n")
    (tmp_path / "variants").mkdir()
    assert published_for(tmp_path / "variants" / "openb_pod_list_cpu050.csv.gz") == {
        "fgd": 5.0}
    assert published_for(tmp_path / "openb_pod_list_default.csv") == {"fgd": 4.77}
    assert published_for(tmp_path / "variants" / "elsewhere.csv") == {}


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


def test_fgd_ahead_keeps_gpus_of_a_model_typed_pods_ask_for():
    shapes = Shapes([TaskShape(1, 1000, 0, 0.5), TaskShape(1, 1000, 0, 0.5)],
                    specs=[(), ("T4",)])  # half the GPU demand can only run on T4
    state = state_of(("T4", 2, 64000), ("P100", 2, 64000), order=(0, 1))
    state.book(0, Pod("on T4", 0, 0, 1, 1000))
    one = Pod("one", 0, 0, 1, 1000)
    # 3000 milli free, 1000 of it on T4 where 1500 is wanted: 500 short. One GPU more from
    # T4 leaves 0 of the 1000 wanted (1000 short); from P100, 1000 of 1000 (none short).
    assert list(typed_shortage_growth(view_of(state.ledger), Want(0, 0, 1, 1000),
                                      np.array([0, 1]), shapes)) == [500, 0]
    assert place(state, one, "fgd-ahead", shapes) == (1, None)
