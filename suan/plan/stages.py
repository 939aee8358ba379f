"""How many transformer layers each pipeline stage holds.

Megatron-Core splits `num_layers` evenly over the `pp · vpp` virtual stages when it can. When
it cannot, the layout most published runs use is Megatron's
`--account-for-embedding-in-pipeline-split --account-for-loss-in-pipeline-split`: the
embedding and the loss each count as one layer, so the first and the last stage hold one
layer fewer than the others (Llama 3 405B: 126 layers on pp 16 = 7 + 14 × 8 + 7; Llama 3
paper §3.3.2). `default_stage_layers` generalises that rule to any count: each virtual
stage gets ⌊L / S⌋ layers and the remainder goes one each to the middle stages first, then
to the first and last (they already carry the embedding and the loss). When L divides by S
this is the even split; when L + 2 divides by S it is Megatron's accounted split.

Given counts follow Megatron-Core's `--decoder-first-pipeline-num-layers` /
`--decoder-last-pipeline-num-layers` (`TransformerConfig.num_layers_in_first_pipeline_stage`,
`..._last_...`): the named stages hold what they are given and the layers left are split
evenly over the other stages, which must divide them (and each stage's count must divide by
vpp, as each of its virtual chunks holds the same number).

Counts returned are per pipeline rank (device), summed over its vpp chunks; virtual stage k
lives on rank k mod pp (the interleaved schedule's placement).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from suan.plan.layout import Layout


PIPELINE_PSEUDO_LAYERS = 2
"""The embedding and the loss, which Megatron's accounted split counts as one virtual-stage
layer each: with 126 layers, pp 16 · vpp 8 = 128 chunks hold the embedding, 126 layers and
the loss, one each (Megatron-Bridge's Llama 3.1 405B recipe)."""


class StageProblem(NamedTuple):
    """A stage-count rule a layout breaks: the option at fault, what is wrong, what is allowed,
    and a fixed label (layout.LayoutProblem carries these to the user)."""

    path: str
    message: str
    allowed: str
    reason: str


@lru_cache(maxsize=4096)
def default_stage_layers(num_layers: int, pp: int, vpp: int = 1) -> tuple[int, ...]:
    """Layers per pipeline rank under the default rule of the module docstring."""
    stages = pp * vpp
    base, extra = divmod(num_layers, stages)
    counts = [base] * stages
    order = [*range(1, stages - 1), 0, stages - 1] if stages > 1 else [0]
    for index in order[:extra]:
        counts[index] += 1
    ranks = [0] * pp
    for index, count in enumerate(counts):
        ranks[index % pp] += count
    return tuple(ranks)


def _given(num_layers: int, layout: Layout) -> tuple[int, ...] | StageProblem:
    """Per-rank counts from the given first/last-stage counts, or the rule they break."""
    first, last, pp = layout.first_stage_layers, layout.last_stage_layers, layout.pp
    if pp == 1:
        return StageProblem("first_stage_layers", "first/last-stage layer counts need pp > 1",
                             "leave them unset when pp = 1", "stage layers without pipeline")
    named = (first or 0) + (last or 0)
    middle = pp - (first is not None) - (last is not None)
    rest = num_layers - named
    if min(first if first is not None else 1, last if last is not None else 1) < 1 or (
            rest < middle if middle else rest != 0):
        return StageProblem(
            "first_stage_layers", f"first {first} + last {last} layers leave {rest} of "
            f"num_layers={num_layers} for {middle} other stages", "counts that leave at least "
            "one layer per other stage and add up to num_layers", "stage layers do not add up")
    if middle and rest % middle:
        return StageProblem(
            "first_stage_layers", f"the {rest} layers left do not split evenly over the "
            f"{middle} other stages", f"counts leaving a multiple of {middle} layers",
            "stage layers do not split evenly")
    each = rest // middle if middle else 0
    return (first if first is not None else each, *([each] * (pp - 2)),
            last if last is not None else each)


def stage_layers_or_problem(num_layers: int, layout: Layout,
                            ) -> tuple[int, ...] | StageProblem:
    """Layers per pipeline rank for `layout`, or the rule its stage counts break."""
    if layout.first_stage_layers is None and layout.last_stage_layers is None:
        chunks = num_layers + (PIPELINE_PSEUDO_LAYERS if layout.pp > 1 else 0)
        if chunks < layout.pp * layout.vpp:
            return StageProblem(
                "pp", f"pp·vpp = {layout.pp}·{layout.vpp} exceeds num_layers={num_layers}"
                + (" + the embedding and the loss" if layout.pp > 1 else ""),
                f"pp·vpp <= {chunks}", "more stages than layers")
        return default_stage_layers(num_layers, layout.pp, layout.vpp)
    counts = _given(num_layers, layout)
    if isinstance(counts, StageProblem):
        return counts
    if layout.vpp > 1 and any(count % layout.vpp for count in counts):
        return StageProblem(
            "vpp", f"stage layer counts {counts} are not all divisible by vpp={layout.vpp}",
            "a vpp dividing every stage's layers", "vpp does not divide the stage layers")
    return counts


def stage_layers(num_layers: int, layout: Layout) -> tuple[int, ...]:
    """Layers per pipeline rank; ValueError for a layout `layout_problems` rejects."""
    counts = stage_layers_or_problem(num_layers, layout)
    if isinstance(counts, StageProblem):
        raise ValueError(counts.message)
    return counts
