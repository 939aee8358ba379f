"""Llama 3's published interruption mix, as rates a failure process can draw from.

Source: Dubey et al., "The Llama 3 Herd of Models", arXiv 2407.21783, §3.3.4 and Table 5: a
54-day snapshot of Llama 3 405B pre-training on up to 16,384 H100 GPUs saw 466 job
interruptions, 47 planned (hardware/firmware upgrades, changes to the training) and 419
unexpected, counted per root-cause component below. Each count over 16,384 GPUs x 54 days
gives a rate per GPU-day; as the job ran on "up to" 16,384 GPUs, these rates are lower bounds.

What each interruption costs is our reading of the component, stated per row:
- `replaces_node`: the fault takes a node out of the job (a GPU, its memory, its host, or the
  link behind it) until it is repaired; a software bug or an NCCL timeout restarts in place.
- `hangs`: the fault shows as a stalled collective that a timeout must catch (a dead switch
  or cable, an NCCL watchdog timeout); every other fault stops a process, which the launcher
  sees at once.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "Llama 3 (arXiv 2407.21783) §3.3.4, Table 5"
PUBLISHED_GPUS = 16_384
PUBLISHED_DAYS = 54.0
PLANNED_COUNT = 47
"""Planned interruptions over the same 54 days. They are the operator's (upgrades, changes to
the run), so their rate is per day of the job, not per GPU."""


@dataclass(frozen=True)
class FailureKind:
    """One row of Table 5 with the cost we give it."""

    component: str
    category: str
    count: int
    replaces_node: bool
    hangs: bool = False

    def per_gpu_day(self) -> float:
        """Interruptions per GPU-day over the published exposure."""
        return self.count / (PUBLISHED_GPUS * PUBLISHED_DAYS)


TABLE_5: tuple[FailureKind, ...] = (
    FailureKind("Faulty GPU (incl. NVLink)", "GPU", 148, replaces_node=True),
    FailureKind("GPU HBM3 memory", "GPU", 72, replaces_node=True),
    FailureKind("Software bug", "Dependency", 54, replaces_node=False),
    FailureKind("Network switch/cable", "Network", 35, replaces_node=True, hangs=True),
    FailureKind("Host maintenance (unplanned)", "Unplanned maintenance", 32, replaces_node=True),
    FailureKind("GPU SRAM memory", "GPU", 19, replaces_node=True),
    FailureKind("GPU system processor", "GPU", 17, replaces_node=True),
    FailureKind("NIC", "Host", 7, replaces_node=True),
    FailureKind("NCCL watchdog timeouts", "Unknown", 7, replaces_node=False, hangs=True),
    FailureKind("Silent data corruption", "GPU", 6, replaces_node=True),
    FailureKind("GPU thermal interface + sensor", "GPU", 6, replaces_node=True),
    FailureKind("SSD", "Host", 3, replaces_node=True),
    FailureKind("Power supply", "Host", 3, replaces_node=True),
    FailureKind("Server chassis", "Host", 2, replaces_node=True),
    FailureKind("IO expansion board", "Host", 2, replaces_node=True),
    FailureKind("Dependency", "Dependency", 2, replaces_node=False),
    FailureKind("CPU", "Host", 2, replaces_node=True),
    FailureKind("System memory", "Host", 2, replaces_node=True),
)


def unexpected_per_gpu_day(kinds: tuple[FailureKind, ...] = TABLE_5) -> float:
    """All unexpected interruptions per GPU-day (419 / 884,736 = 4.74e-4 for Table 5)."""
    return sum(kind.per_gpu_day() for kind in kinds)


def node_replacing_per_gpu_day(kinds: tuple[FailureKind, ...] = TABLE_5) -> float:
    """Interruptions per GPU-day that take a node out of the job."""
    return sum(kind.per_gpu_day() for kind in kinds if kind.replaces_node)


def planned_per_day() -> float:
    """Planned interruptions per day of the job (47 / 54)."""
    return PLANNED_COUNT / PUBLISHED_DAYS


def as_rows(kinds: tuple[FailureKind, ...] = TABLE_5) -> list[dict[str, object]]:
    """The mix as JSON-ready rows."""
    return [{"component": kind.component, "category": kind.category, "count": kind.count,
             "per_gpu_day": kind.per_gpu_day(), "replaces_node": kind.replaces_node,
             "detected_by": "no-progress timeout" if kind.hangs else "process exit"}
            for kind in kinds]
