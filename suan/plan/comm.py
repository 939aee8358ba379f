"""Communication times of the collectives parallel training issues (perf-model.md §5).

Ring algorithms: an all-reduce of S bytes over n ranks moves 2(n−1)/n · S per rank; a
reduce-scatter or all-gather (n−1)/n · S; an all-to-all (n−1)/n · S; a point-to-point send S.
Bandwidth is the bus bandwidth of the tier the group spans (`Hardware.group_bandwidth_gbs`).
Megatron-Core orders ranks tp, cp, ep, dp, pp (fastest first), so the ranks of a dp group are
tp·cp devices apart, and a group of n ranks `stride` apart spans n · stride devices.

Latency follows NCCL's own ring model (`src/graph/tuning.cc`, Simple protocol): a fixed
launch cost plus one hop latency per ring step, NVLink hops inside a node and network hops
between nodes. A ring all-gather or reduce-scatter takes n − 1 steps, nodes − 1 of them across
the network; an all-reduce twice that. So a 128-rank all-gather over 16 nodes costs ~0.5 ms
whatever its size, which is what makes FSDP's per-layer collectives visible at large dp.
"""

from __future__ import annotations

from suan.plan.hardware import Hardware

RING_BASE_LATENCY_S = 8.4e-6
"""Launch latency of a ring collective, Simple protocol (NCCL `tuning.cc` baseLat, Ring)."""

NVLINK_HOP_LATENCY_S = 3.4e-6
"""Latency per ring step over NVLink, Simple protocol (NCCL `tuning.cc` hwLat[NVLINK][Ring])."""

NETWORK_HOP_LATENCY_S = 9.6e-6
"""Latency per ring step across the network, Simple protocol (NCCL `tuning.cc`
hwLat[NET][Ring])."""


def ring_latency(ranks: int, hardware: Hardware, stride: int = 1, passes: int = 1) -> float:
    """Seconds of latency of one ring collective over `ranks` ranks `stride` devices apart;
    `passes` is 1 for all-gather / reduce-scatter / all-to-all and 2 for all-reduce."""
    if ranks <= 1:
        return 0.0
    network_steps = hardware.group_nodes(ranks, stride) - 1
    nvlink_steps = ranks - 1 - network_steps
    return RING_BASE_LATENCY_S + passes * (nvlink_steps * NVLINK_HOP_LATENCY_S
                                           + network_steps * NETWORK_HOP_LATENCY_S)


def _seconds(volume: float, hardware: Hardware, ranks: int, stride: int) -> float:
    return volume / (hardware.group_bandwidth_gbs(ranks, stride) * 1e9)


def all_reduce(size: float, ranks: int, hardware: Hardware, stride: int = 1,
               calls: int = 1) -> float:
    """Seconds for ring all-reduces of `size` bytes in total, issued as `calls` collectives."""
    if ranks <= 1:
        return 0.0
    latency = calls * ring_latency(ranks, hardware, stride, passes=2)
    return latency + _seconds(2 * (ranks - 1) / ranks * size, hardware, ranks, stride)


def all_gather(size: float, ranks: int, hardware: Hardware, stride: int = 1,
               calls: int = 1) -> float:
    """Seconds for ring all-gathers (or reduce-scatters) of `size`-byte full tensors in total,
    issued as `calls` collectives."""
    if ranks <= 1:
        return 0.0
    latency = calls * ring_latency(ranks, hardware, stride)
    return latency + _seconds((ranks - 1) / ranks * size, hardware, ranks, stride)


def all_to_all(size: float, ranks: int, hardware: Hardware, stride: int = 1) -> float:
    """Seconds for an all-to-all in which each rank holds `size` bytes."""
    return all_gather(size, ranks, hardware, stride)


def send_recv(size: float, hardware: Hardware, stride: int) -> float:
    """Seconds for a point-to-point send between ranks `stride` devices apart."""
    return ring_latency(2, hardware, stride) + _seconds(size, hardware, 2, stride)
