"""Communication times of the collectives parallel training issues (perf-model.md §5).

Ring algorithms: an all-reduce of S bytes over n ranks moves 2(n−1)/n · S per rank; a
reduce-scatter or all-gather (n−1)/n · S; an all-to-all (n−1)/n · S; a point-to-point send S.
Bandwidth is the bus bandwidth of the tier the group spans (`Hardware.group_bandwidth_gbs`).
Megatron-Core orders ranks tp, cp, ep, dp, pp (fastest first), so the ranks of a dp group are
tp·cp devices apart, and a group of n ranks `stride` apart spans n · stride devices.
"""

from __future__ import annotations

from suan.plan.hardware import Hardware

COLLECTIVE_LATENCY_S = 20e-6
"""Fixed cost per collective call (NCCL ring latency over NVLink/InfiniBand is ~10-30 µs for
small messages; nccl-tests at 8 B)."""


def _seconds(volume: float, hardware: Hardware, ranks: int, stride: int) -> float:
    return COLLECTIVE_LATENCY_S + volume / (hardware.group_bandwidth_gbs(ranks, stride) * 1e9)


def all_reduce(size: float, ranks: int, hardware: Hardware, stride: int = 1) -> float:
    """Seconds for a ring all-reduce of `size` bytes over `ranks` ranks."""
    if ranks <= 1:
        return 0.0
    return _seconds(2 * (ranks - 1) / ranks * size, hardware, ranks, stride)


def all_gather(size: float, ranks: int, hardware: Hardware, stride: int = 1) -> float:
    """Seconds for a ring all-gather (or reduce-scatter) of a `size`-byte full tensor."""
    if ranks <= 1:
        return 0.0
    return _seconds((ranks - 1) / ranks * size, hardware, ranks, stride)


def all_to_all(size: float, ranks: int, hardware: Hardware, stride: int = 1) -> float:
    """Seconds for an all-to-all in which each rank holds `size` bytes."""
    return all_gather(size, ranks, hardware, stride)


def send_recv(size: float, hardware: Hardware, stride: int) -> float:
    """Seconds for a point-to-point send between ranks `stride` devices apart."""
    return _seconds(size, hardware, 2, stride)
