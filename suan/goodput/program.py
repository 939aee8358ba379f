"""Program goodput: the model FLOPs utilisation (MFU) a job achieved, from its progress records.

    MFU = tokens/s x model FLOPs per token / (devices x dense bf16 peak)

tokens/s is the gang's: per attempt, the growth of each rank's token count over the records it
left, summed over ranks, divided by the server-clock time those records span less the
checkpoint saves in it. The FLOPs per token are `suan.plan.use.flops_per_token` (the count
behind `suan plan estimate`'s MFU) at the job's sequence length (`suan.plan.use.job_workload`,
the one the scheduler's per-type speeds use too); the peak is the catalog's for the allocated
type, the planner's bf16 peak.
"""

from __future__ import annotations

from collections.abc import Iterable

from suan.goodput.timeline import Record


def gang_tokens_per_s(records: Iterable[Record]) -> float | None:
    """The gang's tokens per second of training, None without two token counts of a rank.

    Per attempt: the tokens each rank counted between its first and last record, summed over
    ranks, over the server-clock time between the attempt's first and last such record less
    the checkpoint saves between them (per step the longest of its ranks). Wall time, not
    step times: a rank's step time may leave out its wait in the gang's collectives."""
    first: dict[tuple[int, int], tuple[int, int, float]] = {}
    last: dict[tuple[int, int], tuple[int, int, float]] = {}
    saves: dict[tuple[int, int], float] = {}
    for record in records:
        if record.checkpoint_s:
            key = (record.attempt, record.step)
            saves[key] = max(saves.get(key, 0.0), record.checkpoint_s)
        if record.tokens is None:
            continue
        mine, point = (record.attempt, record.rank), (record.step, record.tokens, record.seen_at)
        if mine not in first or record.step < first[mine][0]:
            first[mine] = point
        if mine not in last or record.step > last[mine][0]:
            last[mine] = point
    tokens = 0
    spans: dict[int, tuple[int, float, int, float]] = {}  # attempt: first and last step, time
    for mine, (step, count, seen) in first.items():
        end_step, end_count, end_seen = last[mine]
        if end_step <= step:
            continue
        tokens += max(0, end_count - count)
        low, since, high, until = spans.get(mine[0], (step, seen, end_step, end_seen))
        spans[mine[0]] = (min(low, step), min(since, seen), max(high, end_step),
                          max(until, end_seen))
    seconds = 0.0
    for attempt, (low, since, high, until) in spans.items():
        saving = sum(v for (a, step), v in saves.items() if a == attempt and low < step <= high)
        seconds += max(0.0, until - since - saving)
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
