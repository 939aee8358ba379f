"""Program goodput: the model FLOPs utilisation (MFU) a job achieved, from its progress records.

    MFU = tokens/s x model FLOPs per token / (devices x dense bf16 peak)

tokens/s is the gang's: per attempt and rank, the growth of the rank's token count over the
steps it reported, summed over ranks, divided by the gang's compute time (per step, the
slowest rank's `step_time_s`, checkpoint saves excluded). The FLOPs per token are
`suan.plan.flops.model_flops_per_token`, the function `suan plan estimate` uses, at the job's
sequence length; the peak is the catalog's for the allocated type.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from suan.goodput.timeline import Record


def gang_tokens_per_s(records: Iterable[Record]) -> float | None:
    """The gang's tokens per second of step time, None without token counts and step times."""
    per_rank: dict[tuple[int, int], list[Record]] = defaultdict(list)
    per_step: dict[tuple[int, int], float] = defaultdict(float)
    for record in records:
        per_rank[(record.attempt, record.rank)].append(record)
        if record.step_time_s is not None:
            compute = max(0.0, record.step_time_s - (record.checkpoint_s or 0.0))
            key = (record.attempt, record.step)
            per_step[key] = max(per_step[key], compute)
    tokens = 0
    counted_steps: set[tuple[int, int]] = set()
    for (attempt, _rank), mine in per_rank.items():
        mine.sort(key=lambda r: r.step)
        counted = [r for r in mine if r.tokens is not None]
        if len(counted) < 2:
            continue
        tokens += max(0, (counted[-1].tokens or 0) - (counted[0].tokens or 0))
        counted_steps.update((attempt, r.step) for r in counted[1:])
    seconds = sum(per_step.get(key, 0.0) for key in counted_steps)
    if tokens <= 0 or seconds <= 0:
        return None
    return tokens / seconds


def mfu(
    tokens_per_s: float, flops_per_token: float, devices: int, peak_tflops: float
) -> float:
    """Model FLOPs utilisation of `devices` devices of `peak_tflops` each."""
    if devices <= 0 or peak_tflops <= 0:
        raise ValueError("devices and peak must be positive")
    return tokens_per_s * flops_per_token / (devices * peak_tflops * 1e12)
