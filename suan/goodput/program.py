"""Program goodput: the model FLOPs utilisation (MFU) a job achieved, from its progress records.

    MFU = tokens/s x model FLOPs per token / (devices x dense bf16 peak)

tokens/s is the gang's: per attempt and rank, the growth of the rank's token count over the
steps it reported, summed over ranks, divided by the gang's compute time (per step, the
slowest rank's `step_time_s`, checkpoint saves excluded). The FLOPs per token are
`suan.plan.flops.model_flops_per_token`, the function `suan plan estimate` uses, at the job's
sequence length; the peak is the catalog's for the allocated type.
"""

from __future__ import annotations

from collections.abc import Iterable

from suan.goodput.timeline import Record


def gang_tokens_per_s(records: Iterable[Record]) -> float | None:
    """The gang's tokens per second of step time, None without token counts and step times.

    Per attempt and rank, the tokens between its first and last counted record; per attempt,
    the compute time of the steps after the first step any rank counted from."""
    first: dict[tuple[int, int], tuple[int, int]] = {}
    last: dict[tuple[int, int], tuple[int, int]] = {}
    per_step: dict[tuple[int, int], float] = {}
    for record in records:
        if record.step_time_s is not None:
            compute = record.step_time_s - (record.checkpoint_s or 0.0)
            key = (record.attempt, record.step)
            if compute > per_step.get(key, 0.0):
                per_step[key] = compute
        if record.tokens is not None:
            mine = (record.attempt, record.rank)
            seen = first.get(mine)
            if seen is None or record.step < seen[0]:
                first[mine] = (record.step, record.tokens)
            seen = last.get(mine)
            if seen is None or record.step > seen[0]:
                last[mine] = (record.step, record.tokens)
    tokens = 0
    start: dict[int, int] = {}
    for mine, (step, count) in first.items():
        end_step, end_count = last[mine]
        if end_step > step:
            tokens += max(0, end_count - count)
            start[mine[0]] = min(start.get(mine[0], step), step)
    seconds = sum(
        value for (attempt, step), value in per_step.items()
        if attempt in start and step > start[attempt]
    )
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
