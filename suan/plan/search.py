"""Search the parallel layouts of one model on N devices and rank them by throughput.

Candidates: tp a divisor of the heads within one link domain; pp and vpp ∈ VPP_CHOICES with
pp·vpp dividing the layers, or the layers + 2 (Megatron's split that counts the embedding and
the loss as a layer each, stages.py); cp ∈ CP_CHOICES for long sequences;
ep ∈ EP_CHOICES for MoE models; dp = N / (tp·pp·cp); micro-batch ∈ MICRO_BATCHES; ZeRO
0-3; recompute none/selective/full; sequence parallelism whenever tp > 1 (it only saves
memory, Korthikanti et al. 2022). A candidate is rejected with a reason (the rule it breaks,
or "out of memory") before its speed is estimated; survivors are ranked by tokens/s.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from suan.plan.estimate import Estimate, estimate
from suan.plan.framework_layout import Said, adapt, fused_loss
from suan.plan.hardware import Hardware
from suan.plan.layout import Layout, Workload, layout_problems
from suan.plan.memory import memory_per_device, usable_bytes
from suan.plan.models import ModelSpec

MICRO_BATCHES = (1, 2, 4, 8)
"""Micro-batch sizes tried (sequences)."""

VPP_CHOICES = (1, 2, 4)
"""Virtual pipeline stages per device tried with pp > 1 (Megatron's interleaved schedule)."""

CP_CHOICES = (1, 2, 4, 8, 16, 32)
"""Context-parallel degrees tried; cp > 1 only while every rank keeps ≥ MIN_CP_CHUNK tokens."""

MIN_CP_CHUNK = 4096
"""Smallest sequence chunk per context-parallel rank worth trying (ring attention hides its
K/V exchange only behind long enough chunks; Megatron-Core CP guidance uses ≥ 4K per rank)."""

EP_CHOICES = (1, 2, 4, 8, 16, 32, 64)
"""Expert-parallel degrees tried for MoE models."""

RECOMPUTE_CHOICES = ("none", "selective", "full")
ZERO_CHOICES = (0, 1, 2, 3)
OUT_OF_MEMORY = "out of memory"
TP_OVER_DOMAIN = "tp exceeds the link domain"


@dataclass
class SearchResult:
    """The best plans (fastest first) and why every other candidate was rejected."""

    plans: list[Estimate]
    considered: int
    feasible: int
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def best(self) -> Estimate | None:
        return self.plans[0] if self.plans else None

    def as_dict(self) -> dict[str, object]:
        return {
            "considered": self.considered,
            "feasible": self.feasible,
            "rejected": dict(self.rejected.most_common()),
            "search_seconds": self.seconds,
            "plans": [plan.as_dict() for plan in self.plans],
        }


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _shapes(model: ModelSpec, hardware: Hardware, devices: int, seq: int,
            rejected: Counter[str]) -> Iterator[tuple[int, int, int, int, int]]:
    """(tp, pp, cp, dp, ep) splits of `devices`; counts those with tp beyond a link domain."""
    cps = [c for c in CP_CHOICES if c == 1 or seq // c >= MIN_CP_CHUNK]
    eps = [e for e in EP_CHOICES if e == 1 or model.is_moe]
    for tp in _divisors(model.heads):
        if devices % tp:
            continue
        if tp > hardware.domain_size:
            rejected[TP_OVER_DOMAIN] += 1
            continue
        for pp, cp in itertools.product(_pipeline_degrees(model.num_layers), cps):
            if devices % (tp * pp * cp) == 0:
                dp = devices // (tp * pp * cp)
                for ep in eps:
                    yield tp, pp, cp, dp, ep


def _splits(num_layers: int, stages: int) -> bool:
    """True when Megatron splits `num_layers` over `stages` virtual stages without given
    counts: evenly, or with the embedding and the loss counted as a layer each."""
    if stages > num_layers:
        return False
    return num_layers % stages == 0 or (stages > 1 and (num_layers + 2) % stages == 0)


def _pipeline_degrees(num_layers: int) -> list[int]:
    return [pp for pp in range(1, num_layers + 1) if _splits(num_layers, pp)]


def _layouts(tp: int, pp: int, cp: int, dp: int, ep: int, num_layers: int) -> Iterator[Layout]:
    vpps = [v for v in VPP_CHOICES if _splits(num_layers, pp * v)] if pp > 1 else [1]
    zeros = ZERO_CHOICES if dp * cp > 1 else (0,)
    for vpp, mb, zero, recompute in itertools.product(vpps, MICRO_BATCHES, zeros,
                                                      RECOMPUTE_CHOICES):
        yield Layout(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp, micro_batch=mb, zero=zero,
                     recompute=recompute, sequence_parallel=tp > 1)


def candidates(model: ModelSpec, hardware: Hardware, devices: int, workload: Workload,
               rejected: Counter[str], framework: str | None = None) -> Iterator[Layout]:
    """Layouts that break no rule and fit in memory, as `framework` runs them
    (framework_layout.adapt); counts the rest in `rejected`."""
    limit = usable_bytes(hardware.memory_gib)
    for shape in _shapes(model, hardware, devices, workload.seq, rejected):
        for searched in _layouts(*shape, model.num_layers):
            said = Said(sequence_parallel=searched.sequence_parallel)
            layout = adapt(searched, workload, framework, said)[0]
            problems = layout_problems(model, layout, workload)
            if problems:
                rejected[problems[0].reason or problems[0].path] += 1
            elif memory_per_device(model, layout, workload).total > limit:
                rejected[OUT_OF_MEMORY] += 1
            else:
                yield layout


def _with_framework_notes(plan: Estimate, framework: str | None) -> Estimate:
    """`plan` with a note for each rule `framework` applies to its layout."""
    said = Said(sequence_parallel=plan.layout.sequence_parallel)
    notes = adapt(plan.layout, plan.workload, framework, said)[2]
    return replace(plan, notes=(*plan.notes, *notes)) if notes else plan


def search(model: ModelSpec, hardware: Hardware, devices: int, workload: Workload,
           top: int = 5, framework: str | None = None) -> SearchResult:
    """The `top` fastest valid layouts of `model` on `devices` devices as `framework` runs
    them (its loss, checkpointing and overlap rules; framework_layout; the canonical name,
    attention.framework_of), and the rejections. Each plan's notes name the rules applied."""
    started = time.perf_counter()
    rejected: Counter[str] = Counter()
    heap: list[tuple[float, int, Estimate]] = []
    feasible = 0
    workload = replace(workload, fused_loss=fused_loss(framework))
    found = candidates(model, hardware, devices, workload, rejected, framework)
    for index, layout in enumerate(found):
        feasible += 1
        plan = estimate(model, hardware, layout, workload, validate=False)
        item = (plan.tokens_per_s, -index, plan)
        if len(heap) < top:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)
    plans = [_with_framework_notes(plan, framework)
             for _, _, plan in sorted(heap, key=lambda it: it[:2], reverse=True)]
    considered = feasible + sum(rejected.values())
    return SearchResult(plans, considered, feasible, rejected,
                        time.perf_counter() - started)
