"""The simulated training job: a Llama-3-405B-like dense model on H100s, its step time from the
planner and the size of its checkpoint.

Step time: the fastest layout `suan plan estimate`'s search finds for llama3-405b on the
GPUs at Llama 3's own workload, 2,048 sequences of 8,192 tokens per step (16M tokens; Llama 3,
arXiv 2407.21783, Table 4). Llama 3's published layout, TP8/PP16/DP128, is not evaluated: the
planner's rules refuse it (pp 16 does not divide the 126 layers; Llama 3 moved a layer off the
first and last stages to make it fit) and its memory estimate, 85.7 GiB, is over 80 GiB.

Checkpoint: parameters x (bf16 weights + fp32 master weights, Adam m and v) = 2 + 12 = 14 bytes
per parameter, the planner's Megatron model states (`MEGATRON_STATES`) less the gradients,
which a checkpoint does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from suan.errors import FieldProblem, SpecError
from suan.plan.hardware import hardware_for
from suan.plan.layout import Workload
from suan.plan.memory import MEGATRON_STATES
from suan.plan.models import load_model
from suan.plan.search import search

MODEL = "llama3-405b"
ACCELERATOR = "H100-SXM-80GB"
SEQUENCE = 8_192
GLOBAL_BATCH = 2_048
CHECKPOINT_BYTES_PER_PARAM = MEGATRON_STATES.param + MEGATRON_STATES.optimizer


@dataclass(frozen=True)
class TrainingJob:
    """What the failure simulation needs to know about the job."""

    model: str
    accelerator: str
    gpus: int
    layout: str
    step_time_s: float
    mfu: float
    params: int

    @property
    def checkpoint_bytes(self) -> float:
        return self.params * CHECKPOINT_BYTES_PER_PARAM

    def write_s(self, storage_gbs: float) -> float:
        """Seconds to write the whole checkpoint at `storage_gbs` GB/s."""
        return self.checkpoint_bytes / (storage_gbs * 1e9)

    def as_dict(self) -> dict[str, object]:
        return {"model": self.model, "accelerator": self.accelerator, "gpus": self.gpus,
                "layout": self.layout, "sequence": SEQUENCE, "global_batch": GLOBAL_BATCH,
                "step_time_s": self.step_time_s, "mfu": self.mfu, "params": self.params,
                "checkpoint_bytes_per_param": CHECKPOINT_BYTES_PER_PARAM,
                "checkpoint_bytes": self.checkpoint_bytes}


def planned_job(gpus: int) -> TrainingJob:
    """The job on `gpus` GPUs with the planner's fastest layout; SpecError naming `--gpus`
    when no layout fits."""
    model = load_model(MODEL)
    result = search(model, hardware_for(ACCELERATOR), gpus,
                    Workload(seq=SEQUENCE, global_batch=GLOBAL_BATCH), top=1)
    best = result.best
    if best is None:
        raise SpecError("suan sim failures", [FieldProblem(
            "--gpus", f"the planner finds no layout of {MODEL} on {gpus} {ACCELERATOR} at "
            f"{GLOBAL_BATCH} x {SEQUENCE} tokens per step",
            "a GPU count that divides into tp x pp x dp x cp, e.g. 16384")])
    return TrainingJob(MODEL, ACCELERATOR, gpus, best.layout.describe(), best.step_time_s,
                       best.mfu, model.total_params())
