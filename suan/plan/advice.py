"""Answers built on `search`: the best layout for a job, per-type throughput, cluster sizing.

These are the entry points the scheduler and the CLI use:

- `choose_layout(model, accelerator, devices, seq, global_batch)` → the fastest `Plan` (an
  `Estimate`, whose `env()` gives SUAN_TP/SUAN_PP/SUAN_DP/...) or None when nothing fits;
- `best_plans(model, accelerator_names, devices)` → the best plan per type (tokens/s per type,
  memoised, is `suan.plan.use.type_speeds`: the one per-type speed API);
- `size_cluster(model, accelerator, tokens, days)` → the fewest devices that train `tokens`
  tokens within `days` days.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from suan.plan.attention import choose_attention, framework_of
from suan.plan.estimate import Estimate
from suan.plan.hardware import Hardware, hardware_for
from suan.plan.layout import Workload
from suan.plan.models import ModelSpec, load_model
from suan.plan.search import SearchResult, search

Plan = Estimate
"""A chosen layout with its prediction."""

DEFAULT_SEQ = 4096
"""Sequence length assumed when a caller gives none (Llama 2's training context)."""

DEFAULT_BATCH_TOKENS = 4 * 2**20
"""Global batch assumed when a caller gives none: 4M tokens, the order of GPT-3 175B (3.2M)
and Llama 2/3 (4M) training batches."""

SECONDS_PER_DAY = 86_400
MAX_SIZE_DEVICES = 1 << 17
"""Largest cluster `size_cluster` considers (131,072 devices)."""

ModelLike = str | Path | dict[str, Any] | ModelSpec


def default_batch(seq: int) -> int:
    """Global batch (sequences) of about DEFAULT_BATCH_TOKENS tokens, a power of two."""
    sequences = max(1, DEFAULT_BATCH_TOKENS // seq)
    return 1 << (sequences.bit_length() - 1)


def _workload(seq: int | None, global_batch: int | None, precision: str,
              attention: str, fp8_recipe: str = "") -> Workload:
    seq = seq or DEFAULT_SEQ
    return Workload(seq=seq, global_batch=global_batch or default_batch(seq), precision=precision,
                    attention=attention, fp8_recipe=fp8_recipe)


def plan_search(model: ModelLike, accelerator: str | Hardware, devices: int, *,
                seq: int | None = None, global_batch: int | None = None, top: int = 5,
                precision: str = "bf16", inter_node_gbs: float | None = None,
                attention: str | None = None, framework: str | None = None,
                fp8_recipe: str = "") -> SearchResult:
    """`search` with names resolved and defaults filled in. The attention kernel is
    `attention`, else the model config's, else `framework`'s default (suan.plan.attention);
    `fp8_recipe` is an FP8 run's scaling recipe (suan.plan.fp8); layouts are searched as
    `framework` runs them (suan.plan.framework_layout)."""
    spec = load_model(model)
    hardware = hardware_for(accelerator, inter_node_gbs)
    kernel = choose_attention(spec, attention, framework).kernel
    workload = _workload(seq, global_batch, precision, kernel, fp8_recipe)
    named = framework_of(framework) if framework else None
    return search(spec, hardware, devices, workload, top, named)


def choose_layout(model: ModelLike, accelerator: str | Hardware, devices: int,
                  seq: int | None = None, global_batch: int | None = None,
                  attention: str | None = None, framework: str | None = None,
                  precision: str = "bf16", fp8_recipe: str = "") -> Plan | None:
    """The fastest layout for a job that names its model but no layout, or None; searched as
    `framework` runs it when one is named (`plan_search`)."""
    return plan_search(model, accelerator, devices, seq=seq, global_batch=global_batch,
                       top=1, precision=precision, attention=attention, framework=framework,
                       fp8_recipe=fp8_recipe).best


def best_plans(model: ModelLike, accelerator_names: list[str], devices: int,
               seq: int | None = None, global_batch: int | None = None,
               attention: str | None = None,
               framework: str | None = None) -> dict[str, Plan | None]:
    """The best BF16 plan of `model` on `devices` devices of each type (None where nothing
    fits), as `framework` runs it when one is named."""
    return {name: choose_layout(model, name, devices, seq, global_batch, attention, framework)
            for name in accelerator_names}


@dataclass(frozen=True)
class Sizing:
    """The answer of `size_cluster`.

    `met`: whether `devices` devices train the tokens within `target_days` at `global_batch`
    sequences per step. When not, `devices` is the count at which the best plan is fastest
    (more devices only lengthen the pipelines of a fixed batch) and `days` its time;
    `larger_batch`, when set, is the smallest power-of-two multiple of the batch (up to
    MAX_BATCH_TOKENS) that meets the target, with the devices and days it takes.
    """

    devices: int
    days: float
    plan: Estimate | None
    met: bool = True
    target_days: float = 0.0
    global_batch: int = 0
    larger_batch: tuple[int, int, float] | None = None

    def advice(self) -> str:
        """One sentence a user can act on: the answer, or why not and what it would take."""
        if self.plan is None:
            return (f"no layout fits on up to {MAX_SIZE_DEVICES} devices at a global batch of "
                    f"{self.global_batch} sequences.")
        if self.met:
            return (f"{self.devices} devices train it in {self.days:.1f} days "
                    f"(target {self.target_days:g}).")
        text = (f"the target of {self.target_days:g} days cannot be met at a global batch of "
                f"{self.global_batch} sequences: the fastest plan runs on {self.devices} devices"
                f" and takes {self.days:.1f} days; more devices only lengthen the pipelines")
        if self.larger_batch:
            batch, devices, days = self.larger_batch
            return text + (f". A global batch of {batch} sequences meets it on {devices} "
                           f"devices in {days:.1f} days.")
        return text + f"; no global batch up to {MAX_BATCH_TOKENS:,} tokens meets it."

    def as_dict(self) -> dict[str, Any]:
        larger = None
        if self.larger_batch:
            batch, devices, days = self.larger_batch
            larger = {"global_batch": batch, "devices": devices, "days": days}
        return {"devices": self.devices, "days": self.days, "met": self.met,
                "target_days": self.target_days, "global_batch": self.global_batch,
                "larger_batch": larger, "advice": self.advice(),
                "plan": self.plan.as_dict() if self.plan else None}


MAX_BATCH_TOKENS = 64 * 2**20
"""Largest global batch `size_cluster` suggests: 64M tokens, about the largest published LLM
pre-training batch (DeepSeek-V3 ramps to 15,360 × 4K = 63M tokens)."""


def _days(plan: Estimate | None, tokens: float) -> float:
    if plan is None:
        return float("inf")
    return tokens / plan.tokens_per_s / SECONDS_PER_DAY


def size_cluster(model: ModelLike, accelerator: str | Hardware, tokens: float, days: float, *,
                 seq: int | None = None, global_batch: int | None = None,
                 precision: str = "bf16", attention: str | None = None,
                 framework: str | None = None, fp8_recipe: str = "") -> Sizing:
    """The fewest whole nodes (a power-of-two count, then bisected over whole nodes) whose
    best plan (`plan_search`'s first) trains `tokens` in `days` at the global batch.

    Doubles the node count until the deadline is met or the best plan's throughput stops
    growing (a fixed batch gives each pipeline fewer micro-batches as data parallelism grows;
    past that point more devices are slower). When the deadline is missed, the answer is the
    fastest count found, and the batch is doubled (up to MAX_BATCH_TOKENS) to say which
    larger batch would meet it.
    """
    hardware = hardware_for(accelerator)
    seq = seq or DEFAULT_SEQ
    batch = global_batch or default_batch(seq)
    kernel = (attention, framework, fp8_recipe)
    sizing = _size_at(model, hardware, tokens, days, seq, batch, precision, kernel)
    if sizing.met:
        return sizing
    larger, start = batch * 2, sizing.devices
    while larger * seq <= MAX_BATCH_TOKENS:
        found = _size_at(model, hardware, tokens, days, seq, larger, precision, kernel, start)
        if found.met:
            return replace(sizing, larger_batch=(larger, found.devices, found.days))
        larger, start = larger * 2, found.devices
    return sizing


def _size_at(model: ModelLike, hardware: Hardware, tokens: float, days: float, seq: int,
             batch: int, precision: str, kernel: tuple[str | None, str | None, str],
             start: int | None = None) -> Sizing:
    """`size_cluster` at one global batch, without the larger-batch suggestion; doubling
    starts at `start` devices (a count a smaller batch could not beat), else one node.
    `kernel` is the (attention, framework, fp8 recipe) that `plan_search` takes."""
    node = hardware.devices_per_node
    plans: dict[int, Estimate | None] = {}

    def best(devices: int) -> Estimate | None:
        if devices not in plans:
            plans[devices] = plan_search(model, hardware, devices, seq=seq, global_batch=batch,
                                         top=1, precision=precision, attention=kernel[0],
                                         framework=kernel[1], fp8_recipe=kernel[2]).best
        return plans[devices]

    def rate(devices: int) -> float:
        plan = best(devices)
        return plan.tokens_per_s if plan else 0.0

    high = start or node
    while high > node and _days(best(high // 2), tokens) <= days:
        high //= 2
    low = high // 2 if high > node else 0
    fastest = high
    while _days(best(high), tokens) > days:
        if rate(high) > rate(fastest):
            fastest = high
        stalled = rate(high) > 0 and high > fastest
        if high >= MAX_SIZE_DEVICES or stalled:
            plan = best(fastest)
            return Sizing(fastest, _days(plan, tokens), plan, False, days, batch)
        low, high = high, high * 2
    while high - low > node:
        middle = (low + high) // 2 // node * node
        if middle in (low, high):
            break
        if _days(best(middle), tokens) <= days:
            high = middle
        else:
            low = middle
    plan = best(high)
    return Sizing(high, _days(plan, tokens), plan, True, days, batch)
