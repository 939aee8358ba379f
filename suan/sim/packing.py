"""Vectorised node state and placement scores for packing experiments (FGD, ATC'23).

`PackState` holds every node's free GPU shares (milli, one column per device), CPU and memory
as numpy arrays, so that one pod is scored against all nodes at once. Scores (lower is better):

- `random`: a uniformly random feasible node (seeded);
- `bestfit`: least remaining resources after placement (GPU and CPU, each normalised);
- `dotprod`: Tetris-style alignment, the largest dot product of demand and free resources;
- `gpu-packing`: a partly used GPU first, then the node left with the fewest whole free GPUs;
- `gpu-clustering`: the node with most pods of the same GPU share, then best fit;
- `fgd`: fragmentation gradient descent, the least growth of the node's expected unusable GPU
  capacity against the workload's task shapes (the same definition as
  `suan.sched.fragmentation.node_fragmentation`), ties to the first node;
- `fgd-bestfit`: FGD with best-fit tie-breaking.

Devices are chosen as the scheduler does (`suan.sched.fit.pick_share`: the fitting device with
the least free share; whole devices: any wholly free ones). Link-domain rules are not applied
(openb's GPU types have none that bind a single replica).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from suan.catalog import Catalog
from suan.cluster.model import Cluster
from suan.sched.fragmentation import TaskShape
from suan.sim.pods import Pod

WHOLE = 1000
STRATEGIES = ("random", "bestfit", "dotprod", "gpu-packing", "gpu-clustering", "fgd",
              "fgd-bestfit", "fgd-gpu", "fgd-gpu-bestfit")
GPU_CHOOSERS = ("fgd-gpu", "fgd-gpu-bestfit")
"""Strategies that also choose the GPU of a fractional pod by fragmentation."""


class PackState:
    """Free resources of every node, booked pod by pod."""

    def __init__(self, cluster: Cluster, catalog: Catalog):
        nodes = cluster.nodes
        width = max((n.devices for n in nodes), default=1) or 1
        self.free = np.full((len(nodes), width), -1, dtype=np.int64)
        for row, node in enumerate(nodes):
            self.free[row, : node.devices] = WHOLE
        self.cpu = np.array([n.cpu_milli for n in nodes], dtype=np.int64)
        self.mem = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        self.types = [n.accelerator for n in nodes]
        self.cpu_scale = float(max(self.cpu.max(initial=1), 1))
        self.mem_scale = float(max(self.mem.max(initial=1), 1))
        self.gpu_scale = float(width * WHOLE)
        self.catalog = catalog
        self.capacity = sum(n.devices for n in nodes)
        self.allocated_milli = 0
        self.same_share: dict[int, np.ndarray] = {}
        self._type_masks: dict[tuple[str, ...], np.ndarray] = {}
        self._fragments: tuple[Shapes, np.ndarray] | None = None

    def fragments(self, shapes: Shapes) -> np.ndarray:
        """Every node's current fragmentation against `shapes`, kept up to date by `book`."""
        if self._fragments is None or self._fragments[0] is not shapes:
            self._fragments = (shapes, fragmentation(self.free, self.cpu, shapes))
        return self._fragments[1]

    # ------------------------------------------------------------------ feasibility
    def type_mask(self, spec: tuple[str, ...]) -> np.ndarray:
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

    # ------------------------------------------------------------------ after-states
    def after(self, pod: Pod, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(free shares, CPU, chosen device per row or -1) of candidate nodes once the pod
        is placed on each."""
        free = self.free[rows].copy()
        cpu = self.cpu[rows] - pod.cpu_milli
        device = np.full(len(rows), -1)
        if pod.num_gpu and pod.gpu_milli < WHOLE:
            masked = np.where(free >= pod.gpu_milli, free, WHOLE + 1)
            device = masked.argmin(axis=1)
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
                device = int(np.where(free >= pod.gpu_milli, free, WHOLE + 1).argmin())
            free[device] -= pod.gpu_milli
        elif pod.num_gpu:
            for device in np.flatnonzero(free == WHOLE)[: pod.num_gpu]:
                free[device] = 0
        self.cpu[row] -= pod.cpu_milli
        self.mem[row] -= pod.memory_mib
        self.allocated_milli += pod.num_gpu * pod.gpu_milli
        if self._fragments is not None:
            shapes, values = self._fragments
            values[row] = fragmentation(self.free[row : row + 1], self.cpu[row : row + 1],
                                        shapes)[0]
        if pod.num_gpu:
            counts = self.same_share.setdefault(pod.gpu_milli, np.zeros(len(self.cpu), int))
            counts[row] += 1


class Shapes:
    """Task shapes as arrays, for scoring many nodes against all shapes at once."""

    def __init__(self, shapes: Sequence[TaskShape]):
        gpu = [s for s in shapes if s.devices > 0]
        self.devices = np.array([s.devices for s in gpu])
        self.milli = np.array([s.milli for s in gpu])
        self.cpu = np.array([s.cpu for s in gpu])
        self.weight = np.array([s.weight for s in gpu], dtype=float)
        self.shares = np.unique(self.milli[self.milli < WHOLE])
        column = np.searchsorted(self.shares, self.milli)
        self.share_column = np.minimum(column, max(len(self.shares) - 1, 0))
        self.fractional = self.milli < WHOLE


def fragmentation(free: np.ndarray, cpu: np.ndarray, shapes: Shapes) -> np.ndarray:
    """Expected unusable GPU capacity (milli) per node row against the task shapes (the
    definition of `suan.sched.fragmentation.node_fragmentation`, for many nodes at once)."""
    usable = np.clip(free, 0, None)
    total = usable.sum(axis=1)
    whole = (free == WHOLE).sum(axis=1)
    partial = total - WHOLE * whole
    value = np.where(whole[:, None] >= shapes.devices[None, :], partial[:, None],
                     total[:, None])
    if len(shapes.shares):
        small = (usable[:, :, None] * (free[:, :, None] < shapes.shares[None, None, :])).sum(1)
        value = np.where(shapes.fractional[None, :], small[:, shapes.share_column], value)
    value = np.where(cpu[:, None] < shapes.cpu[None, :], total[:, None], value)
    return value @ shapes.weight


def choose_gpu(state: PackState, pod: Pod, rows: np.ndarray, strategy: str, shapes: Shapes
               ) -> tuple[int, int]:
    """FGD over (node, GPU) pairs for a fractional pod: the pair whose placement grows the
    node's fragmentation least (with best-fit ties for `fgd-bestfit`)."""
    before = state.fragments(shapes)[rows]
    free, cpu = state.free[rows], state.cpu[rows] - pod.cpu_milli
    best: tuple[float, float, int, int] | None = None
    for device in range(free.shape[1]):
        fits = free[:, device] >= pod.gpu_milli
        if not fits.any():
            continue
        after = free[fits].copy()
        after[:, device] -= pod.gpu_milli
        delta = np.round(fragmentation(after, cpu[fits], shapes) - before[fits], 6)
        remaining = np.clip(after, 0, None).sum(axis=1) / state.gpu_scale
        if strategy == "fgd-gpu":
            remaining = np.zeros(len(after))
        order = np.lexsort((remaining, delta))[0]
        candidate = (float(delta[order]), float(remaining[order]),
                     int(rows[fits][order]), device)
        if best is None or candidate[:3] < best[:3]:
            best = candidate
    assert best is not None
    return best[2], best[3]


def choose(state: PackState, pod: Pod, rows: np.ndarray, strategy: str,
           shapes: Shapes, rng: np.random.Generator) -> int:
    """The node (row index) the strategy picks among feasible `rows`."""
    if strategy == "random":
        return int(rows[rng.integers(len(rows))])
    free, cpu, device = state.after(pod, rows)
    remaining = np.clip(free, 0, None).sum(axis=1) / state.gpu_scale + cpu / state.cpu_scale
    if strategy == "bestfit":
        return int(rows[np.argmin(remaining)])
    if strategy == "dotprod":
        demand = np.array([pod.cpu_milli / state.cpu_scale, pod.memory_mib / state.mem_scale,
                           pod.num_gpu * pod.gpu_milli / state.gpu_scale])
        have = np.stack([state.cpu[rows] / state.cpu_scale, state.mem[rows] / state.mem_scale,
                         np.clip(state.free[rows], 0, None).sum(axis=1) / state.gpu_scale])
        return int(rows[np.argmax(demand @ have)])
    if strategy == "gpu-packing":
        before = state.free[rows]
        shared = np.zeros(len(rows), bool)
        if pod.num_gpu and pod.gpu_milli < WHOLE:
            shared = before[np.arange(len(rows)), device] < WHOLE
        whole_after = (free == WHOLE).sum(axis=1)
        return int(rows[np.lexsort((remaining, whole_after, ~shared))[0]])
    if strategy == "gpu-clustering":
        same = state.same_share.get(pod.gpu_milli)
        count = same[rows] if same is not None and pod.num_gpu else np.zeros(len(rows))
        return int(rows[np.lexsort((remaining, -count))[0]])
    delta = fragmentation(free, cpu, shapes) - state.fragments(shapes)[rows]
    if strategy == "fgd":
        return int(rows[np.argmin(delta)])
    if strategy in ("fgd-bestfit", "fgd-gpu-bestfit"):
        return int(rows[np.lexsort((remaining, np.round(delta, 6)))[0]])
    if strategy == "fgd-gpu":
        return int(rows[np.argmin(delta)])
    raise ValueError(f"unknown packing strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
