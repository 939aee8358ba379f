"""Answers built on `search`: the best layout for a job, per-type throughput, cluster sizing.

These are the entry points the scheduler and the CLI use:

- `choose_layout(model, accelerator, devices, seq, global_batch)` → the fastest `Plan` (an
  `Estimate`, whose `env()` gives SUAN_TP/SUAN_PP/SUAN_DP/...) or None when nothing fits;
- `relative_throughput(model, accelerator_names, devices)` → tokens/s of the best plan per type
  (`best_plans` gives the plans themselves);
- `size_cluster(model, accelerator, tokens, days)` → the fewest devices that train `tokens`
  tokens within `days` days.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suan.plan.attention import choose_attention
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
              attention: str) -> Workload:
    seq = seq or DEFAULT_SEQ
    return Workload(seq=seq, global_batch=global_batch or default_batch(seq), precision=precision,
                    attention=attention)


def plan_search(model: ModelLike, accelerator: str | Hardware, devices: int, *,
                seq: int | None = None, global_batch: int | None = None, top: int = 5,
                precision: str = "bf16", inter_node_gbs: float | None = None,
                attention: str | None = None, framework: str | None = None) -> SearchResult:
    """`search` with names resolved and defaults filled in. The attention kernel is
    `attention`, else the model config's, else `framework`'s default (suan.plan.attention)."""
    spec = load_model(model)
    hardware = hardware_for(accelerator, inter_node_gbs)
    kernel = choose_attention(spec, attention, framework).kernel
    return search(spec, hardware, devices, _workload(seq, global_batch, precision, kernel), top)


def choose_layout(model: ModelLike, accelerator: str | Hardware, devices: int,
                  seq: int | None = None, global_batch: int | None = None,
                  attention: str | None = None) -> Plan | None:
    """The fastest layout for a job that names its model but no layout, or None."""
    return plan_search(model, accelerator, devices, seq=seq, global_batch=global_batch,
                       top=1, attention=attention).best


def best_plans(model: ModelLike, accelerator_names: list[str], devices: int,
               seq: int | None = None, global_batch: int | None = None,
               attention: str | None = None) -> dict[str, Plan | None]:
    """The best plan of `model` on `devices` devices of each type (None where nothing fits)."""
    return {name: choose_layout(model, name, devices, seq, global_batch, attention)
            for name in accelerator_names}


def relative_throughput(model: ModelLike, accelerator_names: list[str], devices: int,
                        seq: int | None = None, global_batch: int | None = None,
                        ) -> dict[str, float]:
    """Tokens/s of the best plan of `model` on `devices` devices of each type (0.0 if none fits)."""
    plans = best_plans(model, accelerator_names, devices, seq, global_batch)
    return {name: plan.tokens_per_s if plan else 0.0 for name, plan in plans.items()}


@dataclass(frozen=True)
class Sizing:
    """The answer of `size_cluster`: devices needed and the plan that runs on them."""

    devices: int
    days: float
    plan: Estimate | None

    def as_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "days": self.days,
                "plan": self.plan.as_dict() if self.plan else None}


def _days(plan: Estimate | None, tokens: float) -> float:
    if plan is None:
        return float("inf")
    return tokens / plan.tokens_per_s / SECONDS_PER_DAY


def size_cluster(model: ModelLike, accelerator: str | Hardware, tokens: float, days: float, *,
                 seq: int | None = None, global_batch: int | None = None,
                 precision: str = "bf16", attention: str | None = None,
                 framework: str | None = None) -> Sizing:
    """The fewest whole nodes (a power-of-two count) whose best plan trains `tokens` in `days`.

    Doubles the node count until the deadline is met, then bisects between the last two
    counts over multiples of a node. Returns the largest cluster tried when none suffices.
    """
    hardware = hardware_for(accelerator)
    node = hardware.devices_per_node

    def best(devices: int) -> Estimate | None:
        return plan_search(model, hardware, devices, seq=seq, global_batch=global_batch,
                           top=1, precision=precision, attention=attention,
                           framework=framework).best

    low, high = 0, node
    while _days(best(high), tokens) > days and high < MAX_SIZE_DEVICES:
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
    return Sizing(high, _days(plan, tokens), plan)
