"""Hooks the rest of Suan calls: a job's layout environment and per-type speeds.

- `plan_env(model, accelerator, devices, seq, global_batch)` → the SUAN_* environment of the
  fastest layout, for a job spec that names a `model` and leaves its layout empty (the control
  plane passes it to every rank). Raises SpecError when no layout fits.
- `type_speeds(model, accelerator_names, devices, seq=..., global_batch=...)` → tokens/s of the
  best plan on `devices` devices of each type, 0.0 for a type on which nothing fits. Results are
  memoised in-process (functools.lru_cache, per (model, type, devices, seq, batch)), so a
  scheduler may call it once per distinct (model, types, devices) every cycle.

- `flops_per_token(model, seq)` → training model FLOPs per token (flops.model_flops_per_token,
  the count behind `suan plan estimate`'s MFU), for goodput's program MFU;
- `job_workload(env)` → the (seq, global batch) a job's SUAN_SEQ / SUAN_GLOBAL_BATCH give, else
  the planner's defaults: the workload its layout, its per-type speeds and its MFU are all
  computed at.

All accept a built-in model name (`llama3-70b`, ...) or a path to a HuggingFace config.json.
These are the only planner numbers the rest of Suan reads, so the scheduler's speeds, the
layout a job runs and goodput's MFU agree with `suan plan estimate` / `search`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from suan.errors import FieldProblem, SpecError
from suan.plan.advice import DEFAULT_SEQ, plan_search
from suan.plan.estimate import Estimate
from suan.plan.flops import model_flops_per_token
from suan.plan.hardware import hardware_for
from suan.plan.models import load_model

ENV_KEYS = ("SUAN_TP", "SUAN_PP", "SUAN_DP", "SUAN_CP", "SUAN_EP", "SUAN_VPP",
            "SUAN_MICRO_BATCH", "SUAN_ZERO", "SUAN_RECOMPUTE")
"""The variables `plan_env` always sets (it adds SUAN_SEQUENCE_PARALLEL, 0 or 1)."""

SPEED_CACHE_SIZE = 4096
"""Memoised (model, type, devices, seq, batch) answers kept per process: a cluster has tens of
types and a queue hundreds of distinct (model, size) shapes."""

ModelRef = str | Path


def _best(model: ModelRef, accelerator: str, devices: int, seq: int,
          global_batch: int | None) -> tuple[Estimate | None, str]:
    """The fastest plan (or None) and a one-line account of why the others were rejected."""
    result = plan_search(model, accelerator, devices, seq=seq, global_batch=global_batch, top=1)
    reasons = ", ".join(f"{reason}: {count}" for reason, count in result.rejected.most_common(3))
    return result.best, reasons


def plan_env(model_name_or_path: ModelRef, accelerator: str, devices: int, seq: int,
             global_batch: int) -> dict[str, str]:
    """SUAN_TP, SUAN_PP, SUAN_DP, SUAN_CP, SUAN_EP, SUAN_VPP, SUAN_MICRO_BATCH, SUAN_ZERO,
    SUAN_RECOMPUTE (and SUAN_SEQUENCE_PARALLEL) of the fastest layout, as strings.

    Raises SpecError (source "plan") naming `devices` when no layout of the model fits on
    `devices` devices of `accelerator`, with the most common rejection reasons; unknown models
    or accelerators raise the loader's SpecError.
    """
    if devices < 1:
        raise SpecError("plan", [FieldProblem("devices", f"must be at least 1, got {devices}",
                                              ">= 1")])
    best, reasons = _best(model_name_or_path, accelerator, devices, seq, global_batch)
    if best is None:
        raise SpecError("plan", [FieldProblem(
            "devices", f"no layout of {model_name_or_path} fits on {devices} × {accelerator} "
            f"(seq {seq}, global batch {global_batch}; rejected: {reasons or 'none tried'})",
            "more devices, a larger-memory accelerator, or a global batch divisible by more "
            "data-parallel degrees")])
    return best.env()


@lru_cache(maxsize=SPEED_CACHE_SIZE)
def _type_speed(model: ModelRef, accelerator: str, devices: int, seq: int,
                global_batch: int | None) -> float:
    """Tokens/s of the best plan, 0.0 when nothing fits (memoised)."""
    if devices < 1:
        return 0.0
    best, _ = _best(model, accelerator, devices, seq, global_batch)
    return best.tokens_per_s if best else 0.0


def type_speeds(model_name_or_path: ModelRef, accelerator_names: Iterable[str], devices: int,
                seq: int = DEFAULT_SEQ, global_batch: int | None = None) -> dict[str, float]:
    """Tokens/s of the best plan of the model on `devices` devices of each named type.

    A type on which no layout fits gets 0.0. `global_batch` None means about 4M tokens
    (advice.default_batch). Unknown accelerator names raise SpecError. Answers are memoised
    per type, so a second call with any overlapping set of types costs microseconds; call
    `clear_speed_cache()` after changing the catalog or a model file.
    """
    names = tuple(accelerator_names)
    for name in names:
        _known_type(name)
    return {name: _type_speed(model_name_or_path, name, devices, seq, global_batch)
            for name in names}


@lru_cache(maxsize=SPEED_CACHE_SIZE)
def _known_type(name: str) -> bool:
    """True for a catalog type; raises SpecError naming --accelerator otherwise."""
    hardware_for(name)
    return True


def clear_speed_cache() -> None:
    """Forget every memoised speed (after a catalog or model-file change)."""
    _type_speed.cache_clear()
    _known_type.cache_clear()


def flops_per_token(model_name_or_path: ModelRef, seq: int) -> float:
    """Training model FLOPs per token (no recomputation, full attention square): the count
    behind `suan plan estimate`'s MFU. Unknown models raise the loader's SpecError."""
    return model_flops_per_token(load_model(model_name_or_path), seq)


def job_workload(env: dict[str, str]) -> tuple[int, int | None]:
    """(seq, global batch) from a job's SUAN_SEQ and SUAN_GLOBAL_BATCH; DEFAULT_SEQ and None
    (about 4M tokens, advice.default_batch) when unset. Raises SpecError naming the variable
    when a value is not a positive integer."""
    return _positive(env, "SUAN_SEQ") or DEFAULT_SEQ, _positive(env, "SUAN_GLOBAL_BATCH")


def _positive(env: dict[str, str], key: str) -> int | None:
    text = env.get(key)
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise SpecError("env", [FieldProblem(key, f"must be a positive integer, got {text!r}",
                                             ">= 1")])
    return int(text)
