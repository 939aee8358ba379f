"""Packing placers: every feasible node scored at once, against the shapes of the work to come.

These are the placements of the FGD paper (Weng et al., USENIX ATC'23, following its simulator
github.com/hkust-adsl/kubernetes-scheduler-simulator, `pkg/simulator/plugin/*_score.go`) and
Suan's own, as scheduler placers (`suan.sched.placement.Placer`). `suan sim pack` places its
pods through them, and any policy can name them. Each gives every feasible node an integer
score from 0 to 100; the highest wins and ties go to the node that comes first in a random
order of the nodes seeded by the placement context's seed.

- `pack-random`: a uniformly random feasible node (and a random GPU that fits a share);
- `pack-bestfit`: least CPU and GPU left afterwards, each over the largest node spec (128
  cores, 8 GPUs), weighted half and half;
- `pack-dotprod`: the smallest dot product of the node's free and the pod's requested CPU and
  GPU (over the same specs);
- `pack-gpu-packing`: a partly used GPU first, then whole free GPUs of a used node, then an
  idle node;
- `pack-gpu-clustering`: nodes already running pods of the same GPU kind (share, 1, 2, 4, 8
  GPUs), preferring nodes of only that kind, then idle nodes, then the node with less GPU free;
- `pack-fgd`: fragmentation gradient descent, `100 * sigmoid(drop of the node's
  fragmentation / 1000)`;
- `pack-fgd-ahead` and `pack-lookahead`: FGD that also counts what a placement takes from the
  arrivals still to come (`suan.sched.lookahead`; the second with cross-validated constants).

The node state is a numpy mirror of the cycle's `Ledger` (`NodeView`), kept per ledger and
refreshed where the ledger changed; every booking goes through `Ledger.take`, on the devices
the ledger itself shows free. Replicas go to ready nodes before degraded ones.

The fragmentation shapes are the workload's typical requests (`Shapes.typical`): those of a
`PackContext`, else those of the context's pending jobs (worked out once per context, in time
linear in the pending replicas). In the live scheduler a group reaches
a placer one accelerator type at a time; a caller that passes `ReplicaAsk.scope` (as `suan sim
pack` does with every node an untyped pod may use) has the nodes of the scope compared
together, whatever their type.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from weakref import WeakKeyDictionary

import numpy as np

from suan.sched.fit import pick_whole
from suan.sched.fragmentation import TaskShape
from suan.sched.ledger import Ledger
from suan.sched.placement import GroupFit, PlaceContext, ReplicaAsk

WHOLE = 1000
MAX_CPU = 128_000
"""The paper simulator's CPU normalisation (milli), `MaxSpecCpu`."""
MAX_GPU = 8_000
"""The paper simulator's GPU normalisation (milli), `MaxSpecGpu`."""
DEFAULT_CPU = 100
"""CPU (milli) a typical pod counts for a request of none (Kubernetes' default)."""
KINDS = 9
"""GPU kinds `pack-gpu-clustering` tells apart: shares, and 1 to 8 whole GPUs."""
COVERAGE = 0.95
"""Share of all requests the typical shapes cover (the paper's `GetTypicalPods`)."""


class Request(Protocol):
    """What the typical-shape rule reads from a pod or a replica group."""

    cpu_milli: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...]


@dataclass(frozen=True)
class Want:
    """One replica's request: CPU and memory, GPUs and the share of each (0 for none)."""

    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...] = ()

    @property
    def fractional(self) -> bool:
        return bool(self.num_gpu) and self.gpu_milli < WHOLE

    @property
    def kind(self) -> int:
        """The GPU kind for `pack-gpu-clustering`: 0 for a share, else the GPU count."""
        return 0 if self.gpu_milli < WHOLE else min(self.num_gpu, KINDS - 1)


# ---------------------------------------------------------------------- shapes
class Shapes:
    """Task shapes as arrays, for scoring many nodes against all shapes at once.

    `specs` holds each GPU shape's acceptable GPU models (empty: any); `cpu_only` is the
    popularity of CPU-only shapes, which count all of a node's free GPU capacity as
    fragmented (the paper's definition; `node_fragmentation` ignores them); `cpu_per_gpu` is
    the CPU (milli) the workload asks per milli GPU (by default the shapes').
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
        self.demand = self.weight * self.devices * self.milli
        """Each shape's expected GPU demand (milli) per typical request."""
        total = float(self.demand.sum())
        own = float(self.weight @ self.cpu) / total if total else 1.0
        self.cpu_per_gpu = cpu_per_gpu or own
        self.typed = typed_shares(self.specs, self.demand)

    @classmethod
    def typical(cls, requests: Sequence[Request], coverage: float = COVERAGE) -> Shapes:
        """The paper's typical pods: the most common (CPU, GPU share, GPUs, GPU models)
        requests, CPU-only ones included, most common first (ties: larger request first)
        until they cover `coverage` of all requests, weighted by count over the chosen ones;
        `cpu_per_gpu` is all the requests' CPU over all their GPU."""
        counts: dict[tuple[int, int, int, tuple[str, ...]], int] = {}
        for item in requests:
            key = (item.cpu_milli or DEFAULT_CPU, item.gpu_milli, item.num_gpu, item.gpu_spec)
            counts[key] = counts.get(key, 0) + 1
        ranked = sorted(counts.items(), reverse=True,
                        key=lambda pair: (pair[1], *pair[0][:3], "|".join(pair[0][3])))
        chosen: list[tuple[tuple[int, int, int, tuple[str, ...]], int]] = []
        covered = 0
        for key, count in ranked:
            if covered >= coverage * len(requests):
                break
            chosen.append((key, count))
            covered += count
        gpu = [(key, count) for key, count in chosen if key[2] > 0]
        shapes = [TaskShape(key[2], key[1], key[0], count / covered) for key, count in gpu]
        cpu_only = sum(count for key, count in chosen if key[2] == 0) / max(covered, 1)
        demand = sum(item.num_gpu * item.gpu_milli for item in requests)
        per_gpu = sum(item.cpu_milli for item in requests) / demand if demand else None
        return cls(shapes, [key[3] for key, _ in gpu], cpu_only, per_gpu)


@dataclass(frozen=True)
class GroupRequest:
    """A replica group read as a `Request` (one per replica)."""

    cpu_milli: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...]


def pending_requests(ctx: PlaceContext) -> list[GroupRequest]:
    """One request per replica of every group of the context's pending jobs."""
    return [GroupRequest(g.cpu_milli, g.accelerators, g.accelerator_milli if g.accelerators
                         else 0, tuple(g.accelerator_types))
            for job in ctx.pending for g in job.groups for _ in range(g.replicas)]


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


def unusable(free: np.ndarray, cpu: np.ndarray, shapes: Shapes,
             access: np.ndarray | None = None) -> np.ndarray:
    """Per node row and GPU shape, the free GPU (milli) a task of that shape could not use:
    all of it when the node cannot host it (GPU model not in the shape's `access` column,
    too little CPU, too few fitting GPUs), else the free shares of GPUs too small for it."""
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
    return value


def fragmentation(free: np.ndarray, cpu: np.ndarray, shapes: Shapes,
                  access: np.ndarray | None = None) -> np.ndarray:
    """Expected unusable GPU capacity (milli) per node row against the task shapes: the
    popularity-weighted `unusable`, plus all free GPU for the CPU-only shapes. With no
    `access` and no CPU-only shapes this is `suan.sched.fragmentation.node_fragmentation`,
    for many nodes at once."""
    total = np.maximum(free, 0).sum(axis=1)
    return unusable(free, cpu, shapes, access) @ shapes.weight + shapes.cpu_only * total


# ---------------------------------------------------------------------- node state
class NodeView:
    """Free GPU shares (milli, one column per device, -1 past a node's devices), CPU and
    memory of every node of a ledger, as numpy arrays, and the GPU kinds running on each."""

    def __init__(self, ledger: Ledger):
        nodes = ledger.nodes
        self.width = max((n.devices for n in nodes), default=1) or 1
        self.free = np.full((len(nodes), self.width), -1, dtype=np.int64)
        self.cpu = np.zeros(len(nodes), dtype=np.int64)
        self.mem = np.zeros(len(nodes), dtype=np.int64)
        self.whole = np.zeros(len(nodes), dtype=np.int64)
        self._fragments: tuple[Shapes, np.ndarray] | None = None
        self._access: tuple[Shapes, np.ndarray] | None = None
        self.refresh(ledger, np.arange(len(nodes)))
        self.devices = np.array([n.devices for n in nodes], dtype=np.int64)
        self.types = [n.accelerator for n in nodes]
        self.schedulable = np.array(ledger.schedulable, dtype=bool)
        self.takes_work = np.array(ledger.takes_work, dtype=bool)
        self.degraded = np.array(ledger.offset, dtype=bool)
        self.catalog = ledger.catalog
        self.kinds = running_kinds(ledger)
        """GPU pods per node by kind: column 0 shares, column k pods of k whole GPUs."""
        self._type_masks: dict[tuple[str, ...], np.ndarray] = {}
        self._ranks: dict[str | int, np.ndarray] = {}

    # ------------------------------------------------------------------ keeping in step
    def refresh(self, ledger: Ledger, rows: np.ndarray) -> None:
        """Read `rows` again from the ledger."""
        for row in rows.tolist():
            shares = ledger.free[row]
            self.free[row, : len(shares)] = shares
        self.cpu[rows] = [ledger.cpu[row] for row in rows.tolist()]
        self.mem[rows] = [ledger.mem[row] for row in rows.tolist()]
        self.whole[rows] = [ledger.whole[row] for row in rows.tolist()]
        self._renew(rows)

    def sync(self, ledger: Ledger) -> None:
        """Refresh the rows whose CPU, memory or wholly free devices changed in the ledger
        since the view last saw them (a share moved between devices of a node with neither
        is caught when that node is chosen: `Packer._devices` reads the ledger's row)."""
        size = len(self.cpu)
        changed = ((np.fromiter(ledger.cpu, np.int64, size) != self.cpu)
                   | (np.fromiter(ledger.mem, np.int64, size) != self.mem)
                   | (np.fromiter(ledger.whole, np.int64, size) != self.whole))
        if changed.any():
            self.refresh(ledger, np.flatnonzero(changed))

    def _renew(self, rows: np.ndarray) -> None:
        if self._fragments is not None and len(rows):
            shapes, values = self._fragments
            values[rows] = fragmentation(self.free[rows], self.cpu[rows], shapes,
                                         self.access(shapes)[rows])

    # ------------------------------------------------------------------ feasibility
    def type_mask(self, spec: tuple[str, ...]) -> np.ndarray:
        """Nodes whose GPU model is one of `spec` (any GPU node when `spec` is empty)."""
        cached = self._type_masks.get(spec)
        if cached is None:
            wanted = {self.catalog.canonical(name) for name in spec if name in self.catalog}
            cached = np.array([t is not None and (not spec or t in wanted) for t in self.types],
                              dtype=bool)
            self._type_masks[spec] = cached
        return cached

    def feasible(self, want: Want, rows: np.ndarray) -> np.ndarray:
        """The `rows` whose node can take the replica now."""
        fits = (self.cpu[rows] >= want.cpu_milli) & (self.mem[rows] >= want.memory_mib)
        if want.num_gpu:
            free = self.free[rows]
            if want.gpu_milli >= WHOLE:
                fits &= (free == WHOLE).sum(axis=1) >= want.num_gpu
            else:
                fits &= free.max(axis=1) >= want.gpu_milli
        return rows[fits]

    def rank(self, seed: str | int) -> np.ndarray:
        """Tie order for `seed`: among equal scores the node of lowest rank wins."""
        cached = self._ranks.get(seed)
        if cached is None:
            number = seed if isinstance(seed, int) else zlib.crc32(str(seed).encode())
            cached = np.random.default_rng(number).permutation(len(self.cpu))
            self._ranks[seed] = cached
        return cached

    # ------------------------------------------------------------------ fragmentation
    def access(self, shapes: Shapes) -> np.ndarray:
        """Which node (row) may host which GPU shape (column), by GPU model."""
        if self._access is None or self._access[0] is not shapes:
            columns = [self.type_mask(spec) for spec in shapes.specs]
            empty = np.zeros((len(self.cpu), 0), dtype=bool)
            self._access = (shapes, np.stack(columns, axis=1) if columns else empty)
        return self._access[1]

    def fragments(self, shapes: Shapes) -> np.ndarray:
        """Every node's current fragmentation against `shapes`, kept up to date."""
        if self._fragments is None or self._fragments[0] is not shapes:
            values = fragmentation(self.free, self.cpu, shapes, self.access(shapes))
            self._fragments = (shapes, values)
        return self._fragments[1]

    # ------------------------------------------------------------------ after-states
    def after(self, want: Want, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(free shares, CPU) of candidate nodes once the replica is placed on each, a
        fractional one on its tightest fitting GPU."""
        free = self.free[rows].copy()
        cpu = self.cpu[rows] - want.cpu_milli
        if want.fractional:
            free[np.arange(len(rows)), tightest(free, want.gpu_milli)] -= want.gpu_milli
        elif want.num_gpu:
            whole = free == WHOLE
            free[whole & (np.cumsum(whole, axis=1) <= want.num_gpu)] = 0
        return free, cpu

    def booked(self, ledger: Ledger, row: int, want: Want) -> None:
        """Record a replica the ledger has just booked on `row`."""
        self.refresh(ledger, np.array([row]))
        if want.num_gpu:
            self.kinds[row, want.kind] += 1


_VIEWS: WeakKeyDictionary[Ledger, NodeView] = WeakKeyDictionary()


def view_of(ledger: Ledger) -> NodeView:
    """The ledger's node view, made on first use and brought up to date."""
    view = _VIEWS.get(ledger)
    if view is None:
        view = _VIEWS[ledger] = NodeView(ledger)
    else:
        view.sync(ledger)
    return view


def running_kinds(ledger: Ledger) -> np.ndarray:
    """GPU pods per node by kind, from the snapshot's running allocations."""
    kinds = np.zeros((len(ledger.nodes), KINDS), dtype=np.int64)
    for alloc in ledger.snapshot.running:
        for replica in alloc.replicas:
            position = ledger.index.get(replica.node)
            if position is not None and replica.devices:
                share = replica.milli < WHOLE
                kinds[position, 0 if share else min(len(replica.devices), KINDS - 1)] += 1
    return kinds


def tightest(free: np.ndarray, milli: int) -> np.ndarray:
    """Per row, the first device with the least free share that still holds `milli`."""
    return np.where(free >= milli, free, WHOLE + 1).argmin(axis=1)


# ---------------------------------------------------------------------- the paper's scores
Scored = tuple[np.ndarray, np.ndarray | None]
"""Per candidate row: the score (higher is better) and the GPU chosen for a fractional pod."""
Score = Callable[[NodeView, Want, np.ndarray, Shapes], Scored]


def bestfit_score(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`(1 - (CPU left / 128 cores + GPU left / 8 GPUs) / 2) * 100`, truncated."""
    cpu_left = view.cpu[rows] - want.cpu_milli
    gpu_left = np.clip(view.free[rows], 0, None).sum(axis=1) - want.num_gpu * want.gpu_milli
    waste = 0.5 * cpu_left / MAX_CPU + 0.5 * gpu_left / MAX_GPU
    return np.floor((1.0 - waste) * 100), None


def dotprod_score(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`(1 - free . request / 2) * 100`, truncated, both vectors over the node specs."""
    cpu = view.cpu[rows] / MAX_CPU * (want.cpu_milli / MAX_CPU)
    gpu = np.clip(view.free[rows], 0, None).sum(axis=1) / MAX_GPU
    dot = cpu + gpu * (want.num_gpu * want.gpu_milli / MAX_GPU)
    return np.floor((1.0 - dot / 2) * 100), None


def gpu_packing_score(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes
                      ) -> Scored:
    """Shared GPU: `100 - free % of the GPUs used / 10` (at least 50); whole free GPUs of a
    used node: `50 - their count` (at least 33); an idle node: `33 - its GPUs`."""
    if not want.num_gpu:
        return np.zeros(len(rows)), None
    before = view.free[rows]
    whole = (before == WHOLE).sum(axis=1)
    idle = whole == view.devices[rows]
    if want.gpu_milli >= WHOLE:
        used = np.full(len(rows), want.num_gpu)
        shared_pct = np.zeros(len(rows), dtype=np.int64)
    else:
        left = before[np.arange(len(rows)), tightest(before, want.gpu_milli)]
        used = (left == WHOLE).astype(np.int64)
        shared_pct = left * 100 // WHOLE
    score = np.where(used > 0, np.maximum(50 - used, 33), np.maximum(100 - shared_pct // 10, 50))
    return np.where(idle, np.maximum(33 - whole, whole), score), None


def gpu_clustering_score(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes
                         ) -> Scored:
    """`25 * (8 GPUs - GPU free) / 8 GPUs` plus 75 on a node running only pods of the pod's
    GPU kind, 50 on one running that kind among others, 25 on a node running no GPU pod."""
    if not want.num_gpu:
        return np.zeros(len(rows)), None
    kinds = view.kinds[rows]
    same = kinds[:, want.kind] > 0
    distinct = (kinds > 0).sum(axis=1)
    bonus = np.where(same, np.where(distinct == 1, 75, 50), np.where(distinct == 0, 25, 0))
    left = np.clip(view.free[rows], 0, None).sum(axis=1)
    return 25 * (MAX_GPU - left) // MAX_GPU + bonus, None


def fgd_score(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`100 * sigmoid((fragmentation before - after) / 1000)`, truncated; a fractional pod
    takes the first of its node's GPUs with the highest score."""
    scores = sigmoid_score(fragmentation_drops(view, want, rows, shapes))
    return scores.max(axis=1), scores.argmax(axis=1) if scores.shape[1] > 1 else None


def sigmoid_score(drops: np.ndarray) -> np.ndarray:
    """FGD's node score of a fragmentation drop (milli): `100 * sigmoid(drop / 1000)`,
    truncated; -1 where the drop is -inf (the GPU cannot hold the pod)."""
    exact = np.round(drops, 6)
    return np.where(np.isfinite(exact), np.floor(100.0 / (1.0 + np.exp(-exact / 1000.0))), -1)


def fragmentation_drops(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes
                        ) -> np.ndarray:
    """How much placing the replica lowers each candidate node's fragmentation: one column,
    or for a fractional one a column per GPU (-inf where the GPU cannot hold it or repeats
    an earlier GPU's free share)."""
    before = view.fragments(shapes)[rows]
    access = view.access(shapes)[rows]
    if not want.fractional:
        free, cpu = view.after(want, rows)
        return (before - fragmentation(free, cpu, shapes, access))[:, None]
    free = view.free[rows]
    pair_row, pair_device = np.nonzero((free >= want.gpu_milli) & ~repeats(free))
    after = free[pair_row]
    after[np.arange(len(pair_row)), pair_device] -= want.gpu_milli
    drops = np.full(free.shape, -np.inf)
    drops[pair_row, pair_device] = before[pair_row] - fragmentation(
        after, view.cpu[rows][pair_row] - want.cpu_milli, shapes, access[pair_row])
    return drops


def repeats(free: np.ndarray) -> np.ndarray:
    """Devices whose free share equals that of an earlier device on the same node (placing
    a pod there leaves the same node state, so only the first is scored)."""
    seen = np.zeros(free.shape, dtype=bool)
    for device in range(1, free.shape[1]):
        seen[:, device] = (free[:, :device] == free[:, device : device + 1]).any(axis=1)
    return seen


# ---------------------------------------------------------------------- placers
@dataclass
class PackContext(PlaceContext):
    """A placement context that names the workload itself (`suan sim pack` passes the whole
    pod list) and carries the random generator of `pack-random` and the tie order."""

    requests: Sequence[Request] | None = None
    """The workload whose typical shapes fragmentation is measured against (default: the
    pending jobs' replicas)."""
    shapes: Shapes | None = None
    """Shapes to use as they are, instead of the typical ones of `requests`."""
    generator: np.random.Generator | None = None
    tie_rank: np.ndarray | None = None
    """Each node's place in the tie order (lowest wins); by default a seeded permutation."""


_SHAPES: dict[tuple[int, float], tuple[PlaceContext, Shapes]] = {}


def shapes_for(ctx: PlaceContext, coverage: float = COVERAGE) -> Shapes:
    """The context's own shapes, else the typical shapes (covering `coverage` of the
    requests) of its workload or, without one, of its pending work; kept for the last few
    contexts."""
    own = getattr(ctx, "shapes", None)
    if own is not None:
        return own
    key = (id(ctx), coverage)
    kept = _SHAPES.get(key)
    if kept is not None and kept[0] is ctx:
        return kept[1]
    requests = getattr(ctx, "requests", None)
    shapes = Shapes.typical(pending_requests(ctx) if requests is None else requests, coverage)
    if len(_SHAPES) >= 8:
        _SHAPES.pop(next(iter(_SHAPES)))
    _SHAPES[key] = (ctx, shapes)
    return shapes


def generator_for(ctx: PlaceContext) -> np.random.Generator:
    """The context's numpy generator (made from its seeded `rng` on first use)."""
    own = getattr(ctx, "generator", None)
    if own is None:
        own = np.random.default_rng(ctx.rng.getrandbits(64))
        if isinstance(ctx, PackContext):
            ctx.generator = own
    return own


class Packer:
    """A packing placer: per replica, the feasible node of the best score (see the module
    docstring); the GPU of a share is the score's choice, else the tightest that fits."""

    def __init__(self, name: str, score: Score | None, label: str,
                 coverage: float = COVERAGE):
        self.name = name
        self.score = score
        self.label = label
        self.coverage = coverage

    def place(self, ledger: Ledger, ask: ReplicaAsk, ctx: PlaceContext) -> GroupFit | str:
        """Book the group's replicas one at a time; all or nothing."""
        view = view_of(ledger)
        want = Want(ask.cpu, ask.mem, ask.devices, ask.milli if ask.devices else 0)
        candidates = self._candidates(view, ledger, ask)
        mark, slots = ledger.savepoint(), []
        for _ in range(ask.replicas):
            slot = self._one(view, ledger, ask, want, candidates, ctx)
            if slot is None:
                ledger.rollback(mark)
                view.refresh(ledger, np.array(sorted({row for row, _ in slots}), dtype=int))
                return (f"no {ask.accelerator or 'node'} node can take replica "
                        f"{len(slots) + 1} of {ask.replicas}")
            slots.append(slot)
        names = list(dict.fromkeys(ledger.nodes[row].name for row, _ in slots))
        return GroupFit(slots, f"{self.label} ({', '.join(names[:4])}"
                               f"{f' and {len(names) - 4} more' if len(names) > 4 else ''})")

    def _candidates(self, view: NodeView, ledger: Ledger, ask: ReplicaAsk) -> np.ndarray:
        """The nodes the ask may use: its scope, else the schedulable nodes of its type (for
        a replica with no GPU, every node that takes work); no degraded node while the
        ledger is `ready_only`."""
        if ask.scope is not None:
            rows = np.array(ask.scope, dtype=int)
        elif not ask.devices:
            rows = np.flatnonzero(view.takes_work)
        else:
            rows = np.flatnonzero(view.schedulable & view.type_mask((ask.accelerator,)))
        if ledger.ready_only:
            rows = rows[~view.degraded[rows]]
        return rows

    def _one(self, view: NodeView, ledger: Ledger, ask: ReplicaAsk, want: Want,
             candidates: np.ndarray, ctx: PlaceContext) -> tuple[int, tuple[int, ...]] | None:
        """One replica on the best feasible ready node, else the best degraded one."""
        feasible = view.feasible(want, candidates)
        for rows in (feasible[~view.degraded[feasible]], feasible[view.degraded[feasible]]):
            while len(rows):
                row, device = self.choose(view, want, rows, ctx)
                devices = self._devices(ledger, row, ask, device)
                if devices is not None:
                    ledger.take(row, devices, want.gpu_milli, ask.cpu, ask.mem)
                    view.booked(ledger, row, want)
                    return row, devices
                view.refresh(ledger, np.array([row]))
                rows = view.feasible(want, rows[rows != row])
        return None

    def choose(self, view: NodeView, want: Want, rows: np.ndarray, ctx: PlaceContext
               ) -> tuple[int, int | None]:
        """The node (row) the placer picks among feasible `rows`, and the GPU for a
        fractional replica when the placer chooses it (None: the tightest that fits)."""
        if self.score is None:
            generator = generator_for(ctx)
            row = int(rows[generator.integers(len(rows))])
            if want.fractional:
                return row, int(generator.choice(np.flatnonzero(view.free[row]
                                                                >= want.gpu_milli)))
            return row, None
        score, devices = self.score(view, want, rows, shapes_for(ctx, self.coverage))
        tied = np.flatnonzero(score == score.max())
        rank = getattr(ctx, "tie_rank", None)
        rank = view.rank(ctx.seed) if rank is None else rank
        pick = int(tied[np.argmin(rank[rows[tied]])])
        return int(rows[pick]), None if devices is None else int(devices[pick])

    @staticmethod
    def _devices(ledger: Ledger, row: int, ask: ReplicaAsk, device: int | None
                 ) -> tuple[int, ...] | None:
        """The devices to book on `row`, checked against the ledger itself: the chosen or
        tightest GPU for a share, whole GPUs by the node's link domains, none for no GPU."""
        free = ledger.free[row]
        if ledger.cpu[row] < ask.cpu or ledger.mem[row] < ask.mem:
            return None
        if not ask.devices:
            return ()
        if ask.milli < WHOLE:
            if device is None:
                fitting = [(share, d) for d, share in enumerate(free) if share >= ask.milli]
                return (min(fitting)[1],) if fitting else None
            return (device,) if free[device] >= ask.milli else None
        return pick_whole(free, ledger.nodes[row].domains, ask.devices, ask.rule,
                          ask.replica_in_domain)


def packer_class(name: str, score: Score | None, label: str, coverage: float = COVERAGE
                 ) -> type:
    """A `Packer` subclass with fixed name, score and coverage, for the `PLACERS` registry
    (which makes placers by calling their class with no arguments)."""

    def init(self: Packer) -> None:
        Packer.__init__(self, name, score, label, coverage)

    return type(f"Packer_{name}", (Packer,), {"__init__": init, "name": name})
