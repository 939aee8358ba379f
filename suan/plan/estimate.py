"""`estimate(model, hardware, layout, workload) -> Estimate`: speed and memory of one plan.

MFU = model FLOPs (no recomputation, attention convention `convention`) per second per device
÷ the dense peak of the run's precision; HFU counts the recomputed FLOPs too (flops.py).
`fits` says whether the most loaded device's memory is within the accelerator's capacity;
`notes` carry what was adjusted (sequence parallelism at tp 1 does nothing) and `warnings`
what a user should act on (the layout does not fit, the MFU's peak is disputed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from suan.plan.flops import hardware_flops_per_token, model_flops_per_token
from suan.plan.hardware import Hardware
from suan.plan.layout import Layout, Workload, check_layout, microbatches
from suan.plan.memory import (
    GIB,
    MEGATRON_STATES,
    MEMORY_HEADROOM,
    Memory,
    StateBytes,
    memory_per_device,
    usable_bytes,
)
from suan.plan.models import ModelSpec
from suan.plan.stages import stage_layers
from suan.plan.timing import StepTime, bubble_fraction, step_time


@dataclass(frozen=True)
class Estimate:
    """Predicted step time, throughput, utilisation and memory of one layout."""

    model: str
    hardware: str
    layout: Layout
    workload: Workload
    time: StepTime
    memory: Memory
    memory_capacity_gib: float
    model_flops_per_token: float
    hardware_flops_per_token: float
    peak_tflops: float
    convention: str
    num_layers: int = 0
    peak_caveat: str = ""
    notes: tuple[str, ...] = ()

    @property
    def step_time_s(self) -> float:
        return self.time.total

    @property
    def tokens_per_s(self) -> float:
        return self.workload.tokens / self.step_time_s

    @property
    def tokens_per_s_per_device(self) -> float:
        return self.tokens_per_s / self.layout.devices

    @property
    def tflops_per_device(self) -> float:
        """Model TFLOP/s per device (the numerator of MFU)."""
        return self.tokens_per_s_per_device * self.model_flops_per_token / 1e12

    @property
    def hardware_tflops_per_device(self) -> float:
        return self.tokens_per_s_per_device * self.hardware_flops_per_token / 1e12

    @property
    def mfu(self) -> float:
        return self.tflops_per_device / self.peak_tflops

    @property
    def hfu(self) -> float:
        return self.hardware_tflops_per_device / self.peak_tflops

    @property
    def memory_gib(self) -> float:
        return self.memory.total / GIB

    @property
    def fits(self) -> bool:
        """True when the most loaded device's memory is within the accelerator's capacity."""
        return self.memory_gib <= self.memory_capacity_gib

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a user should act on: a layout that does not fit, a disputed MFU peak."""
        found = []
        if not self.fits:
            found.append(f"does not fit: {self.memory_gib:.1f} GiB per device needed, "
                         f"{self.memory_capacity_gib:.0f} GiB available")
        elif self.memory.total > usable_bytes(self.memory_capacity_gib):
            found.append(f"tight: {self.memory_gib:.1f} of {self.memory_capacity_gib:.0f} GiB "
                         f"leaves less than the {MEMORY_HEADROOM:.0%} headroom the planner "
                         "keeps for the allocator")
        if self.peak_caveat:
            found.append(f"MFU uses a disputed peak of {self.peak_tflops:g} TFLOP/s "
                         f"({self.peak_caveat})")
        return tuple(found)

    @property
    def bubble_fraction(self) -> float:
        m = microbatches(self.layout, self.workload)
        return bubble_fraction(self.layout.pp, m, self.layout.vpp)

    def env(self) -> dict[str, str]:
        """The layout as the environment a planned job's ranks receive (SUAN_TP, ...)."""
        layout = self.layout
        values = {"TP": layout.tp, "PP": layout.pp, "DP": layout.dp, "CP": layout.cp,
                  "EP": layout.ep, "VPP": layout.vpp, "MICRO_BATCH": layout.micro_batch,
                  "ZERO": layout.zero, "RECOMPUTE": layout.recompute,
                  "SEQUENCE_PARALLEL": int(layout.sequence_parallel)}
        return {f"SUAN_{key}": str(value) for key, value in values.items()}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: the keys `suan plan estimate --json` prints."""
        layout = self.layout
        return {
            "model": self.model,
            "accelerator": self.hardware,
            "devices": layout.devices,
            "layout": {
                "tp": layout.tp, "pp": layout.pp, "dp": layout.dp, "cp": layout.cp,
                "ep": layout.ep, "vpp": layout.vpp, "micro_batch": layout.micro_batch,
                "zero": layout.zero, "recompute": layout.recompute,
                "sequence_parallel": layout.sequence_parallel, "cp_comm": layout.cp_comm,
                "tp_comm_overlap": layout.tp_overlap, "dp_comm_overlap": layout.dp_overlap,
                "gather_once": layout.gather_once,
            },
            "seq": self.workload.seq,
            "global_batch": self.workload.global_batch,
            "precision": self.workload.precision,
            "microbatches": microbatches(layout, self.workload),
            "step_time_s": self.step_time_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_device": self.tokens_per_s_per_device,
            "tflops_per_device": self.tflops_per_device,
            "hardware_tflops_per_device": self.hardware_tflops_per_device,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "peak_tflops": self.peak_tflops,
            "attention_flops_convention": self.convention,
            "model_flops_per_token": self.model_flops_per_token,
            "bubble_fraction": self.bubble_fraction,
            "time_breakdown_s": self.time.as_dict(),
            "memory_gib_per_device": self.memory_gib,
            "memory_capacity_gib": self.memory_capacity_gib,
            "memory_gib": self.memory.gib(),
            "fits": self.fits,
            "peak_disputed": self.peak_caveat or None,
            "stage_layers": list(stage_layers(self.num_layers, layout)),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def estimate(model: ModelSpec, hardware: Hardware, layout: Layout, workload: Workload, *,
             devices: int | None = None, convention: str = "full",
             states: StateBytes = MEGATRON_STATES, validate: bool = True) -> Estimate:
    """Predict one plan. Raises SpecError (naming the option) when the layout is invalid.

    Sequence parallelism at tp 1 is turned off with a note (it splits nothing)."""
    notes: tuple[str, ...] = ()
    if layout.sequence_parallel and layout.tp == 1:
        layout = replace(layout, sequence_parallel=False)
        notes = ("sequence parallelism does nothing at tp 1; estimated without it",)
    if validate:
        check_layout(model, layout, workload, devices)
    return Estimate(
        model=model.name,
        hardware=hardware.name,
        layout=layout,
        workload=workload,
        time=step_time(model, layout, workload, hardware),
        memory=memory_per_device(model, layout, workload, states),
        memory_capacity_gib=hardware.memory_gib,
        model_flops_per_token=model_flops_per_token(model, workload.seq, convention),
        hardware_flops_per_token=hardware_flops_per_token(
            model, workload.seq, layout.recompute, convention),
        peak_tflops=hardware.peak_tflops(workload.precision),
        convention=convention,
        num_layers=model.num_layers,
        peak_caveat=hardware.peak_caveat,
        notes=notes,
    )
