"""FGD that looks ahead: the fragmentation drop of a placement, less what it takes from the
arrivals still to come.

FGD (`suan.sched.packing.fgd_score`) compares nodes by how much a placement raises the GPU
capacity that the workload's typical requests could not use on that node. It does not see
that a placement can leave capacity that fits every typical request on its node, yet too
little of some kind across the cluster for the requests still to come. The scores here
subtract that, in the same unit (milli GPU), and are rounded and tie-broken like FGD:

- `stranding_growth`: the growth of the node's GPU stranded by CPU (free GPU beyond what its
  free CPU serves at the workload's CPU per GPU);
- `typed_shortage_growth`: the growth of the shortage of GPUs of the models that typical
  requests ask for, against each set of models' share of the GPU demand;
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suan.sched.packing import (
    COVERAGE,
    NodeView,
    Scored,
    Shapes,
    Want,
    fragmentation_drops,
    sigmoid_score,
)


def stranded(gpu: np.ndarray, cpu: np.ndarray, cpu_per_gpu: float) -> np.ndarray:
    """Free GPU (milli) that the node's free CPU cannot serve at `cpu_per_gpu` (none when
    the workload asks for no CPU)."""
    if cpu_per_gpu <= 0:
        return np.zeros(len(gpu))
    return np.maximum(0.0, gpu - cpu / cpu_per_gpu)


def stranding_growth(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes
                     ) -> np.ndarray:
    """Per candidate row, how much placing the replica grows the node's stranded GPU."""
    gpu, cpu = np.maximum(view.free[rows], 0).sum(axis=1), view.cpu[rows]
    before = stranded(gpu, cpu, shapes.cpu_per_gpu)
    after = stranded(gpu - want.num_gpu * want.gpu_milli, cpu - want.cpu_milli,
                     shapes.cpu_per_gpu)
    return np.maximum(after - before, 0.0)


def typed_shortage_growth(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes
                          ) -> np.ndarray:
    """Per candidate row, how much placing the replica deepens the shortage of GPUs kept for
    typical requests that ask for certain GPU models (never negative)."""
    if not shapes.typed or not want.num_gpu:
        return np.zeros(len(rows))
    columns, shares = zip(*shapes.typed, strict=True)
    inside = view.access(shapes)[:, list(columns)]
    node_free = np.maximum(view.free, 0).sum(axis=1)
    total, gpu, share = float(node_free.sum()), want.num_gpu * want.gpu_milli, np.array(shares)
    kept = node_free @ inside
    before = np.maximum(0.0, share * total - kept)
    after = np.maximum(0.0, share * (total - gpu) - kept + gpu * inside[rows])
    return np.maximum(after - before, 0.0).sum(axis=1)


def fgd_ahead_score(view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes) -> Scored:
    """`pack-fgd-ahead`: FGD's score of (fragmentation drop - stranding growth - typed
    shortage growth); a fractional replica takes the GPU with the largest exact value (the
    first on ties)."""
    penalty = (stranding_growth(view, want, rows, shapes)
               + typed_shortage_growth(view, want, rows, shapes))
    return _scored(fragmentation_drops(view, want, rows, shapes) - penalty[:, None])


def _scored(drops: np.ndarray) -> Scored:
    device = np.round(drops, 6).argmax(axis=1) if drops.shape[1] > 1 else None
    return sigmoid_score(drops).max(axis=1), device


class Lookahead:
    """A lookahead score with its constants: the sigmoid scale of the rounded score (milli;
    0 compares exact values; None: `share_scale` of the shapes) and the weights of the two
    look-ahead terms."""

    def __init__(self, scale: float | None = 1000.0, strand: float = 1.0, typed: float = 1.0):
        self.scale, self.strand, self.typed = scale, strand, typed

    def __call__(self, view: NodeView, want: Want, rows: np.ndarray, shapes: Shapes
                 ) -> Scored:
        drops = fragmentation_drops(view, want, rows, shapes)
        penalty = np.zeros(len(rows))
        if self.strand:
            penalty += self.strand * stranding_growth(view, want, rows, shapes)
        if self.typed:
            penalty += self.typed * typed_shortage_growth(view, want, rows, shapes)
        drops = drops - penalty[:, None]
        device = np.round(drops, 6).argmax(axis=1) if drops.shape[1] > 1 else None
        best = np.round(drops, 6).max(axis=1)
        scale = share_scale(shapes) if self.scale is None else self.scale
        if not scale:
            return np.where(np.isfinite(best), best, -np.inf), device
        exact = np.where(np.isfinite(best), best, 0.0)
        score = np.floor(100.0 / (1.0 + np.exp(-exact / scale)))
        return np.where(np.isfinite(best), score, -1), device


def share_scale(shapes: Shapes) -> float:
    """The sigmoid scale that ties nodes whose values differ by less than the smallest GPU
    amount a typical request asks for: one score point is `scale / 25` milli near a drop of
    0 (the slope of `100 * sigmoid(x / scale)` there is `25 / scale`), so the scale is 25
    times that amount (no GPU shapes: FGD's 1000)."""
    return 25.0 * float(shapes.milli.min()) if len(shapes.milli) else 1000.0


@dataclass(frozen=True)
class Constants:
    """Every constant of a `pack-lookahead` placer: the sigmoid scale of its rounded score
    (milli GPU; nodes whose values differ by under about `scale / 25` tie, and ties go to
    the seeded node order; None: `share_scale`), the weights of the stranding and
    typed-shortage terms, and the share of requests the typical shapes cover."""

    scale: float | None = 1000.0
    strand: float = 1.0
    typed: float = 1.0
    coverage: float = COVERAGE

    @property
    def key(self) -> str:
        scale = "share" if self.scale is None else f"{self.scale:g}"
        return f"s{scale}-w{self.strand:g}-t{self.typed:g}-c{self.coverage:g}"

    def as_dict(self) -> dict[str, float | str]:
        scale = "smallest typical share x 25" if self.scale is None else self.scale
        return {"scale": scale, "strand": self.strand, "typed": self.typed,
                "coverage": self.coverage}

    def score_args(self) -> dict[str, float | None]:
        return {"scale": self.scale, "strand": self.strand, "typed": self.typed}
