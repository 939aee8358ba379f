"""`estimate(model, hardware, layout, workload) -> Estimate`: speed and memory of one plan.

MFU = model FLOPs (no recomputation, attention convention `convention`) per second per device
÷ the dense peak of the run's precision; HFU counts the recomputed FLOPs too (flops.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from suan.plan.flops import hardware_flops_per_token, model_flops_per_token
from suan.plan.hardware import Hardware
from suan.plan.layout import Layout, Workload, check_layout, microbatches
from suan.plan.memory import GIB, MEGATRON_STATES, Memory, StateBytes, memory_per_device
from suan.plan.models import ModelSpec
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
                "sequence_parallel": layout.sequence_parallel,
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
        }


def estimate(model: ModelSpec, hardware: Hardware, layout: Layout, workload: Workload, *,
             devices: int | None = None, convention: str = "full",
             states: StateBytes = MEGATRON_STATES, validate: bool = True) -> Estimate:
    """Predict one plan. Raises SpecError (naming the option) when the layout is invalid."""
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
    )
