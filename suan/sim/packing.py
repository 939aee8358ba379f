"""Vectorised node state and the placements of the packing experiment (FGD, Weng et al. ATC'23).

`PackState` holds every node's free GPU shares (milli, one column per device), CPU and memory
as numpy arrays, so that one pod is scored against all feasible nodes at once.

The six placements of the paper follow its simulator (github.com/hkust-adsl/
kubernetes-scheduler-simulator, `pkg/simulator/plugin/*_score.go`): each gives every feasible
node an integer score from 0 to 100, the highest wins, and ties go to the node that comes first
in a seeded random order of the nodes (the simulator prefixes node names with a seeded random
permutation; our reading is that ties follow that order). The GPU of a fractional pod is the
tightest one that fits, except for `random` (a random one) and `fgd` (chosen by its score).

- `random`: a uniformly random feasible node;
- `bestfit`: least CPU and GPU left afterwards, each over the largest node spec (128 cores,
  8 GPUs), weighted half and half;
- `dotprod`: the smallest dot product of the node's free and the pod's requested CPU and GPU
  (over the same specs): a packing, not a Tetris-style alignment, score;
- `gpu-packing`: a partly used GPU first, then whole free GPUs of a used node, then an idle
  node (fewest GPUs first);
- `gpu-clustering`: nodes already running pods of the same GPU kind (share, 1, 2, 4, 8 GPUs),
  preferring nodes of only that kind, then idle nodes, then the node with less GPU free;
- `fgd`: fragmentation gradient descent, `100 * sigmoid(decrease of the node's fragmentation /
  1000)` against the workload's typical pods (`Shapes.typical`).

Ours (not in the paper):

- `fgd-ahead`: FGD whose fragmentation drop also subtracts what the placement takes from
  arrivals still to come: the growth of the node's GPU stranded by CPU (free GPU beyond what
  its free CPU serves at the workload's CPU per GPU, `stranded`) and the growth of the
  shortage of GPUs of the models that typical pods ask for (`shortage_growth`). It is scored,
  rounded and tie-broken like `fgd`; the GPU of a fractional pod is the one with the largest
  unrounded value.

CPU-only pods score 0 everywhere under `gpu-packing` and `gpu-clustering`, so they go to the
first feasible node in the tie order. A fractional request (share below 1000) is one GPU's
share, as all of openb's are. Link-domain rules are not applied (openb's GPU types have none
that bind a single replica).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from suan.catalog import Catalog
from suan.cluster.model import Cluster
from suan.sched.fragmentation import TaskShape
from suan.sim.pods import Pod

WHOLE = 1000
MAX_CPU = 128_000
"""The paper simulator's CPU normalisation (milli), `MaxSpecCpu`."""
MAX_GPU = 8_000
"""The paper simulator's GPU normalisation (milli), `MaxSpecGpu`."""
DEFAULT_CPU = 100
"""CPU (milli) the paper's typical pods count for a pod requesting none (Kubernetes' default)."""
KINDS = 9
"""GPU kinds `gpu-clustering` tells apart: shares, and 1 to 8 whole GPUs."""
PAPER = ("random", "dotprod", "gpu-clustering", "gpu-packing", "bestfit", "fgd")
OURS = ("fgd-ahead",)
STRATEGIES = PAPER + OURS

Scored = tuple[np.ndarray, np.ndarray | None]
"""Per candidate row: the score (higher is better) and the GPU chosen for a fractional pod."""


class PackState:
    """Free resources of every node, booked pod by pod."""

    def __init__(self, cluster: Cluster, catalog: Catalog, seed: int = 0):
        nodes = cluster.nodes
        width = max((n.devices for n in nodes), default=1) or 1
        self.free = np.full((len(nodes), width), -1, dtype=np.int64)
        for row, node in enumerate(nodes):
            self.free[row, : node.devices] = WHOLE
        self.devices = np.array([n.devices for n in nodes], dtype=np.int64)
        self.cpu = np.array([n.cpu_milli for n in nodes], dtype=np.int64)
        self.mem = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        self.types = [n.accelerator for n in nodes]
        self.catalog = catalog
        self.capacity = int(self.devices.sum())
        self.allocated_milli = 0
        self.kinds = np.zeros((len(nodes), KINDS), dtype=np.int64)
        """GPU pods per node by kind: column 0 shares, column k pods of k whole GPUs."""
        self.rank = np.random.default_rng(seed).permutation(len(nodes))
        """Tie order: among equal scores the node of lowest rank wins."""
        self._type_masks: dict[tuple[str, ...], np.ndarray] = {}
        self._fragments: tuple[Shapes, np.ndarray] | None = None
        self._access: tuple[Shapes, np.ndarray] | None = None

    # ------------------------------------------------------------------ feasibility
    def type_mask(self, spec: tuple[str, ...]) -> np.ndarray:
        """Nodes whose GPU model is one of `spec` (any GPU node when `spec` is empty)."""
        cached = self._type_masks.get(spec)
        if cached is None:
            wanted = {self.catalog.canonical(name) for name in spec if name in self.catalog}
            cached = np.array([t is not None and (not spec or t in wanted) for t in self.types])
            self._type_masks[spec] = cached
        return cached

    def feasible(self, pod: Pod) -> np.ndarray:
        """Indexes of nodes that can take the pod now."""
        fits = (self.cpu >= pod.cpu_milli) & (self.mem >= pod.memory_mib)
        if pod.num_gpu:
            fits &= self.type_mask(pod.gpu_spec)
            if pod.gpu_milli >= WHOLE:
                fits &= (self.free == WHOLE).sum(axis=1) >= pod.num_gpu
            else:
                fits &= self.free.max(axis=1) >= pod.gpu_milli
        return np.flatnonzero(fits)

    def first_best(self, rows: np.ndarray, score: np.ndarray) -> int:
        """Position in `rows` of the highest score, ties to the lowest rank."""
        tied = np.flatnonzero(score == score.max())
        return int(tied[np.argmin(self.rank[rows[tied]])])

    # ------------------------------------------------------------------ fragmentation
    def access(self, shapes: Shapes) -> np.ndarray:
        """Which node (row) may host which GPU shape (column), by GPU model."""
        if self._access is None or self._access[0] is not shapes:
            columns = [self.type_mask(spec) for spec in shapes.specs]
            empty = np.zeros((len(self.cpu), 0), dtype=bool)
            self._access = (shapes, np.stack(columns, axis=1) if columns else empty)
        return self._access[1]

    def fragments(self, shapes: Shapes) -> np.ndarray:
        """Every node's current fragmentation against `shapes`, kept up to date by `book`."""
        if self._fragments is None or self._fragments[0] is not shapes:
            values = fragmentation(self.free, self.cpu, shapes, self.access(shapes))
            self._fragments = (shapes, values)
        return self._fragments[1]

    # ------------------------------------------------------------------ after-states
    def after(self, pod: Pod, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(free shares, CPU, chosen device per row or -1) of candidate nodes once the pod
        is placed on each, a fractional pod on its tightest fitting GPU."""
        free = self.free[rows].copy()
        cpu = self.cpu[rows] - pod.cpu_milli
        device = np.full(len(rows), -1)
        if pod.num_gpu and pod.gpu_milli < WHOLE:
            device = tightest(free, pod.gpu_milli)
            free[np.arange(len(rows)), device] -= pod.gpu_milli
        elif pod.num_gpu:
            whole = free == WHOLE
            order = np.cumsum(whole, axis=1)
            free[whole & (order <= pod.num_gpu)] = 0
        return free, cpu, device

    def book(self, row: int, pod: Pod, device: int | None = None) -> None:
        """Place the pod on node `row` (a fractional pod on `device`, else the tightest)."""
        free = self.free[row]
        if pod.num_gpu and pod.gpu_milli < WHOLE:
            if device is None:
                device = int(tightest(free[None, :], pod.gpu_milli)[0])
            free[device] -= pod.gpu_milli
        elif pod.num_gpu:
            for whole in np.flatnonzero(free == WHOLE)[: pod.num_gpu]:
                free[whole] = 0
        self.cpu[row] -= pod.cpu_milli
        self.mem[row] -= pod.memory_mib
        self.allocated_milli += pod.num_gpu * pod.gpu_milli
        if pod.num_gpu:
            self.kinds[row, kind(pod)] += 1
        if self._fragments is not None:
            shapes, values = self._fragments
            values[row] = fragmentation(self.free[row : row + 1], self.cpu[row : row + 1],
                                        shapes, self.access(shapes)[row : row + 1])[0]


def tightest(free: np.ndarray, milli: int) -> np.ndarray:
    """Per row, the first device with the least free share that still holds `milli`."""
    return np.where(free >= milli, free, WHOLE + 1).argmin(axis=1)


def kind(pod: Pod) -> int:
    """The pod's GPU kind for `gpu-clustering`: 0 for a share, else its whole GPU count."""
    return 0 if pod.gpu_milli < WHOLE else min(pod.num_gpu, KINDS - 1)


class Shapes:
    """Task shapes as arrays, for scoring many nodes against all shapes at once.

    `specs` holds each GPU shape's acceptable GPU models (empty: any); `cpu_only` is the
    popularity of CPU-only shapes, which count all of a node's free GPU capacity as
    fragmented (the paper's definition; the scheduler's `node_fragmentation` ignores them);
    `cpu_per_gpu` is the CPU (milli) the workload asks per milli GPU (by default the shapes').
    """

    def __init__(self, shapes: Sequence[TaskShape], specs: Sequence[tuple[str, ...]] = (),
                 cpu_only: float = 0.0, cpu_per_gpu: float | None = None):
        gpu = [s for s in shapes if s.devices > 0]
        self.devices = np.array([s.devices for s in gpu], dtype=np.int64)
        self.milli = np.array([s.milli for s in gpu], dtype=np.int64)
        self.cpu = np.array([s.cpu for s in gpu], dtype=np.int64)
        self.weight = np.array([s.weight for s in gpu], dtype=float)
        self.shares = np.unique(self.milli[self.milli < WHOLE])
        column = np.searchsorted(self.shares, self.milli)
        self.share_column = np.minimum(column, max(len(self.shares) - 1, 0))
        self.fractional = self.milli < WHOLE
        self.specs = list(specs) if specs else [()] * len(gpu)
        self.cpu_only = cpu_only
        demand = float(self.weight @ (self.devices * self.milli))
        own = float(self.weight @ self.cpu) / demand if demand else 1.0
        self.cpu_per_gpu = cpu_per_gpu or own
        self.typed = typed_shares(self.specs, self.weight * self.devices * self.milli)

    @classmethod
    def typical(cls, pods: Sequence[Pod], coverage: float = 0.95) -> Shapes:
        """The paper's typical pods: the most common (CPU, GPU share, GPUs, GPU models)
        requests, CPU-only pods included, most common first (ties: larger request first)
        until they cover `coverage` of all pods, weighted by count over the chosen ones;
        `cpu_per_gpu` is all the pods' CPU over all their GPU."""
        counts: dict[tuple[int, int, int, tuple[str, ...]], int] = {}
        for pod in pods:
            key = (pod.cpu_milli or DEFAULT_CPU, pod.gpu_milli, pod.num_gpu, pod.gpu_spec)
            counts[key] = counts.get(key, 0) + 1
        ranked = sorted(counts.items(), reverse=True,
                        key=lambda item: (item[1], *item[0][:3], "|".join(item[0][3])))
        chosen: list[tuple[tuple[int, int, int, tuple[str, ...]], int]] = []
        covered = 0
        for key, count in ranked:
            if covered >= coverage * len(pods):
                break
            chosen.append((key, count))
            covered += count
        gpu = [(key, count) for key, count in chosen if key[2] > 0]
        shapes = [TaskShape(key[2], key[1], key[0], count / covered) for key, count in gpu]
        cpu_only = sum(count for key, count in chosen if key[2] == 0) / max(covered, 1)
        demand = sum(pod.num_gpu * pod.gpu_milli for pod in pods)
        per_gpu = sum(pod.cpu_milli for pod in pods) / demand if demand else None
        return cls(shapes, [key[3] for key, _ in gpu], cpu_only, per_gpu)


def typed_shares(specs: Sequence[tuple[str, ...]], demand: np.ndarray
                 ) -> list[tuple[int, float]]:
    """Per set of GPU models that shapes ask for: a shape column with that set, and the
    set's share of the shapes' GPU demand."""
    total = float(demand.sum())
    shares: dict[frozenset[str], tuple[int, float]] = {}
    for column, spec in enumerate(specs):
        if spec and total:
            first, share = shares.get(frozenset(spec), (column, 0.0))
            shares[frozenset(spec)] = (first, share + float(demand[column]) / total)
    return list(shares.values())


def fragmentation(free: np.ndarray, cpu: np.ndarray, shapes: Shapes,
                  access: np.ndarray | None = None) -> np.ndarray:
    """Expected unusable GPU capacity (milli) per node row against the task shapes.

    For one GPU shape: all free capacity when the node cannot host it (GPU model not in the
    shape's `access` column, too little CPU, too few fitting GPUs), else the free shares of
    GPUs too small for it. With no `access` and no CPU-only shapes this is the definition of
    `suan.sched.fragmentation.node_fragmentation`, for many nodes at once."""
    usable = np.maximum(free, 0)
    total = usable.sum(axis=1)
    whole = (free == WHOLE).sum(axis=1)
    partial = total - WHOLE * whole
    value = np.where(whole[:, None] >= shapes.devices[None, :], partial[:, None],
                     total[:, None])
    if len(shapes.shares):
        small = np.zeros((len(shapes.shares), len(free)), dtype=np.int64)
        for column, share in zip(free.T, usable.T, strict=True):
            small += share * (column[None, :] < shapes.shares[:, None])
        value = np.where(shapes.fractional[None, :], small.T[:, shapes.share_column], value)
    value = np.where(cpu[:, None] < shapes.cpu[None, :], total[:, None], value)
    if access is not None:
        value = np.where(access, value, total[:, None])
    return value @ shapes.weight + shapes.cpu_only * total


# ---------------------------------------------------------------------- the paper's scores
def bestfit_score(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`(1 - (CPU left / 128 cores + GPU left / 8 GPUs) / 2) * 100`, truncated."""
    cpu_left = state.cpu[rows] - pod.cpu_milli
    gpu_left = np.clip(state.free[rows], 0, None).sum(axis=1) - pod.num_gpu * pod.gpu_milli
    waste = 0.5 * cpu_left / MAX_CPU + 0.5 * gpu_left / MAX_GPU
    return np.floor((1.0 - waste) * 100), None


def dotprod_score(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`(1 - free . request / 2) * 100`, truncated, both vectors over the node specs."""
    cpu = state.cpu[rows] / MAX_CPU * (pod.cpu_milli / MAX_CPU)
    gpu = np.clip(state.free[rows], 0, None).sum(axis=1) / MAX_GPU
    dot = cpu + gpu * (pod.num_gpu * pod.gpu_milli / MAX_GPU)
    return np.floor((1.0 - dot / 2) * 100), None


def gpu_packing_score(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes
                      ) -> Scored:
    """Shared GPU: `100 - free % of the GPUs used / 10` (at least 50); whole free GPUs of a
    used node: `50 - their count` (at least 33); an idle node: `33 - its GPUs`."""
    if not pod.num_gpu:
        return np.zeros(len(rows)), None
    before = state.free[rows]
    whole = (before == WHOLE).sum(axis=1)
    idle = whole == state.devices[rows]
    if pod.gpu_milli >= WHOLE:
        used = np.full(len(rows), pod.num_gpu)
        shared_pct = np.zeros(len(rows), dtype=np.int64)
    else:
        left = before[np.arange(len(rows)), tightest(before, pod.gpu_milli)]
        used = (left == WHOLE).astype(np.int64)
        shared_pct = left * 100 // WHOLE
    score = np.where(used > 0, np.maximum(50 - used, 33), np.maximum(100 - shared_pct // 10, 50))
    return np.where(idle, np.maximum(33 - whole, whole), score), None


def gpu_clustering_score(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes
                         ) -> Scored:
    """`25 * (8 GPUs - GPU free) / 8 GPUs` plus 75 on a node running only pods of the pod's
    GPU kind, 50 on one running that kind among others, 25 on a node running no GPU pod."""
    if not pod.num_gpu:
        return np.zeros(len(rows)), None
    kinds = state.kinds[rows]
    same = kinds[:, kind(pod)] > 0
    distinct = (kinds > 0).sum(axis=1)
    bonus = np.where(same, np.where(distinct == 1, 75, 50), np.where(distinct == 0, 25, 0))
    left = np.clip(state.free[rows], 0, None).sum(axis=1)
    return 25 * (MAX_GPU - left) // MAX_GPU + bonus, None


def fgd_score(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`100 * sigmoid((fragmentation before - after) / 1000)`, truncated; a fractional pod
    takes the first of its node's GPUs with the highest score."""
    scores = sigmoid_score(fragmentation_drops(state, pod, rows, shapes))
    return scores.max(axis=1), scores.argmax(axis=1) if scores.shape[1] > 1 else None


def sigmoid_score(drops: np.ndarray) -> np.ndarray:
    """FGD's node score of a fragmentation drop (milli): `100 * sigmoid(drop / 1000)`,
    truncated; -1 where the drop is -inf (the GPU cannot hold the pod)."""
    exact = np.round(drops, 6)
    return np.where(np.isfinite(exact), np.floor(100.0 / (1.0 + np.exp(-exact / 1000.0))), -1)


def fragmentation_drops(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes
                        ) -> np.ndarray:
    """How much placing the pod lowers each candidate node's fragmentation: one column, or
    for a fractional pod one column per GPU (-inf where the GPU cannot hold it or repeats an
    earlier GPU's free share)."""
    before = state.fragments(shapes)[rows]
    access = state.access(shapes)[rows]
    if not pod.num_gpu or pod.gpu_milli >= WHOLE:
        free, cpu, _ = state.after(pod, rows)
        return (before - fragmentation(free, cpu, shapes, access))[:, None]
    free = state.free[rows]
    pair_row, pair_device = np.nonzero((free >= pod.gpu_milli) & ~repeats(free))
    after = free[pair_row]
    after[np.arange(len(pair_row)), pair_device] -= pod.gpu_milli
    drops = np.full(free.shape, -np.inf)
    drops[pair_row, pair_device] = before[pair_row] - fragmentation(
        after, state.cpu[rows][pair_row] - pod.cpu_milli, shapes, access[pair_row])
    return drops


def repeats(free: np.ndarray) -> np.ndarray:
    """Devices whose free share equals that of an earlier device on the same node (placing
    a pod there leaves the same node state, so only the first is scored)."""
    seen = np.zeros(free.shape, dtype=bool)
    for device in range(1, free.shape[1]):
        seen[:, device] = (free[:, :device] == free[:, device : device + 1]).any(axis=1)
    return seen


# ---------------------------------------------------------------------- ours
def stranded(gpu: np.ndarray, cpu: np.ndarray, cpu_per_gpu: float) -> np.ndarray:
    """Free GPU (milli) that the node's free CPU cannot serve at `cpu_per_gpu` (none when
    the workload asks for no CPU)."""
    if cpu_per_gpu <= 0:
        return np.zeros(len(gpu))
    return np.maximum(0.0, gpu - cpu / cpu_per_gpu)


def shortage_growth(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes
                    ) -> np.ndarray:
    """Per candidate row, how much placing the pod deepens the shortage of GPUs kept for
    typical pods that ask for certain GPU models (never negative).

    For each set of models asked for, the shortage is how far the free GPU of those models
    falls below the set's share of the workload's GPU demand times all the free GPU: arrivals
    keep coming in those proportions, so the free GPU should too."""
    if not shapes.typed or not pod.num_gpu:
        return np.zeros(len(rows))
    columns, shares = zip(*shapes.typed, strict=True)
    inside = state.access(shapes)[:, list(columns)]
    node_free = np.maximum(state.free, 0).sum(axis=1)
    total, gpu, share = float(node_free.sum()), pod.num_gpu * pod.gpu_milli, np.array(shares)
    kept = node_free @ inside
    before = np.maximum(0.0, share * total - kept)
    after = np.maximum(0.0, share * (total - gpu) - kept + gpu * inside[rows])
    return np.maximum(after - before, 0.0).sum(axis=1)


def fgd_ahead_score(state: PackState, pod: Pod, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`fgd-ahead`: FGD's score of (fragmentation drop - growth of the node's GPU stranded
    by CPU - growth of the typed pods' shortage); a fractional pod takes the GPU with the
    largest exact value (the first on ties)."""
    gpu, cpu = np.maximum(state.free[rows], 0).sum(axis=1), state.cpu[rows]
    before = stranded(gpu, cpu, shapes.cpu_per_gpu)
    after = stranded(gpu - pod.num_gpu * pod.gpu_milli, cpu - pod.cpu_milli,
                     shapes.cpu_per_gpu)
    penalty = np.maximum(after - before, 0.0) + shortage_growth(state, pod, rows, shapes)
    drops = fragmentation_drops(state, pod, rows, shapes) - penalty[:, None]
    device = np.round(drops, 6).argmax(axis=1) if drops.shape[1] > 1 else None
    return sigmoid_score(drops).max(axis=1), device


SCORES: dict[str, Callable[[PackState, Pod, np.ndarray, Shapes], Scored]] = {
    "bestfit": bestfit_score, "dotprod": dotprod_score, "gpu-packing": gpu_packing_score,
    "gpu-clustering": gpu_clustering_score, "fgd": fgd_score, "fgd-ahead": fgd_ahead_score,
}


# ---------------------------------------------------------------------- choice
def choose(state: PackState, pod: Pod, rows: np.ndarray, strategy: str, shapes: Shapes,
           rng: np.random.Generator) -> tuple[int, int | None]:
    """The node (row index) the strategy picks among feasible `rows`, and the GPU for a
    fractional pod when the strategy chooses it (None: the tightest fitting GPU)."""
    if strategy == "random":
        row = int(rows[rng.integers(len(rows))])
        if pod.num_gpu and pod.gpu_milli < WHOLE:
            return row, int(rng.choice(np.flatnonzero(state.free[row] >= pod.gpu_milli)))
        return row, None
    if strategy not in SCORES:
        raise ValueError(f"unknown packing strategy {strategy!r}; known: "
                         f"{', '.join(STRATEGIES)}")
    score, devices = SCORES[strategy](state, pod, rows, shapes)
    pick = state.first_best(rows, score)
    return int(rows[pick]), None if devices is None else int(devices[pick])
