"""Check the planner against published measurements and report the per-row error.

    python -m suan.plan.calibrate [--csv ../shared/planner/calibration.csv]
        [--markdown docs/planner-calibration.md]

Rows are read from the project's calibration CSV (columns documented in its header) and from
`holdout.csv` beside this module (published measurements that were not used to fit anything).
Throughput is compared as tokens/s per device, which is independent of FLOP-counting
conventions; the TFLOP/s columns of the report use each source's own convention (the ratio
of its published TFLOP/s to its tokens/s), so the percentage error is the same.
Memory rows compare the first pipeline stage's model states and activations.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from suan.plan.estimate import Estimate, estimate
from suan.plan.hardware import hardware_for
from suan.plan.layout import Layout, Workload
from suan.plan.models import ModelSpec, load_model

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CSV = REPO_ROOT.parent / "shared" / "planner" / "calibration.csv"
HOLDOUT_CSV = Path(__file__).with_name("holdout.csv")
MEGATRON_VOCAB = 51200
"""GPT-2 BPE vocabulary padded to a multiple of 1024 as Megatron-LM does (SC'21 §5.1)."""

_MEMORY = re.compile(r"params\+opt\s+([\d.]+);\s*activations\s+([\d.]+)")

FP32_REDUCE_BYTES = 4
"""Gradient bytes on the wire when a run reduces in fp32: Composer's FSDP mixed-precision mode
"DEFAULT" sets `reduce_dtype=torch.float32` (composer/trainer/mosaic_fsdp_utils.py,
`get_mixed_precision`, torch 2.0-2.2 releases), the mode of the llm-foundry H100 and most
A100-80GB rows; "PURE" reduces in bf16."""

PIPELINE_PSEUDO_LAYERS = 2
"""Megatron-LM's `account_for_embedding_in_pipeline_split` and `..._loss_...` count the
embedding and the loss as one layer each when splitting stages (Llama 3.1 405B: 126 + 2 = 128
layers over pp · vpp = 64 chunks); used only for rows whose split needs it."""

_MEGATRON_2021 = ("megatron-lm sc21", "megatron-lm readme", "korthikanti")


@dataclass(frozen=True)
class Row:
    """One measurement: a plan plus what was measured (tokens/s/device, memory GiB)."""

    row_id: str
    group: str
    model: ModelSpec
    accelerator: str
    layout: Layout
    workload: Workload
    tokens_per_s_per_device: float | None
    reported_tflops: float | None
    memory_gib: float | None
    """Measured memory per device: model states + activations of the first pipeline stage
    (Korthikanti Fig. 1) or the framework's peak reading (torchtitan)."""


@dataclass(frozen=True)
class Result:
    """A row with its prediction."""

    row: Row
    predicted: Estimate

    @property
    def throughput_error(self) -> float | None:
        measured = self.row.tokens_per_s_per_device
        if not measured:
            return None
        return self.predicted.tokens_per_s_per_device / measured - 1

    @property
    def memory_error(self) -> float | None:
        if self.row.memory_gib is None:
            return None
        return self.predicted.memory_gib / self.row.memory_gib - 1


def _int(value: str, default: int = 1) -> int:
    value = (value or "").strip()
    return int(float(value)) if re.fullmatch(r"[\d.]+", value) else default


def _float(value: str) -> float | None:
    value = (value or "").strip()
    return float(value) if re.fullmatch(r"[\d.]+", value) else None


def _model(rec: dict[str, str]) -> ModelSpec:
    if (rec.get("builtin_model") or "").strip():
        return _pipeline_padded(load_model(rec["builtin_model"].strip()), rec)
    hidden, heads = _int(rec["hidden_size"]), _int(rec["num_attention_heads"])
    megatron = "megatron" in rec["source_group"].lower() or "korthikanti" in rec[
        "source_group"].lower()
    return ModelSpec(
        name=rec["model_name"], num_layers=_int(rec["num_layers"]), hidden=hidden,
        ffn=_int(rec["ffn_hidden_size"], 4 * hidden), heads=heads,
        kv_heads=_int(rec["num_kv_heads"], heads), vocab=_int(rec["vocab_size"], MEGATRON_VOCAB),
        max_seq=_int(rec["seq_len"]), head_dim=hidden // heads, v_head_dim=hidden // heads,
        gated_mlp=False, biases=megatron, tied_embeddings=True, learned_positions=megatron,
    )


def _pipeline_padded(model: ModelSpec, rec: dict[str, str]) -> ModelSpec:
    """`model` with the embedding and loss pseudo-layers added when its layers alone do not
    split over the row's pp · vpp chunks but Megatron's accounting for them does."""
    chunks = _int(rec["pp"]) * _int(rec["virtual_pp"])
    padded = model.num_layers + PIPELINE_PSEUDO_LAYERS
    if model.num_layers % chunks and padded % chunks == 0:
        return replace(model, num_layers=padded)
    return model


def _recompute(text: str) -> str:
    text = text.lower()
    if text.startswith("selective"):
        return "selective"
    if text.startswith("none"):
        return "none"
    return "full"


def _zero(text: str) -> int:
    text = text.lower()
    if "distributed optimizer" in text:
        return 1
    return 3 if "fsdp" in text else 0


def _layout(rec: dict[str, str]) -> Layout:
    zero = _zero(rec["zero_or_fsdp"])
    return Layout(
        tp=_int(rec["tp"]), pp=_int(rec["pp"]), dp=_int(rec["dp"]), cp=_int(rec["cp"]),
        vpp=_int(rec["virtual_pp"]), micro_batch=_int(rec["micro_batch_seqs"]), zero=zero,
        recompute=_recompute(rec["activation_recompute"]),
        sequence_parallel=rec["sequence_parallel"].strip().lower() == "yes",
    )


def _accelerator(hardware: str) -> str:
    text = hardware.upper()
    if "H100" in text:
        return "H100"
    return "A100-40GB" if "40GB" in text else "A100-80GB"


def _tokens_per_s(rec: dict[str, str], workload: Workload, devices: int) -> float | None:
    if _float(rec["tokens_per_s_per_gpu"]):
        return _float(rec["tokens_per_s_per_gpu"])
    iteration = _float(rec["iter_time_s"])
    if iteration:
        return workload.tokens / iteration / devices
    return None


def _sc21_tokens_per_s(rec: dict[str, str], model: ModelSpec, seq: int) -> float | None:
    """SC'21 Table 1 reports TFLOP/s by Eq. 3 (96·B·s·l·h²·(1 + s/6h + V/16lh), with
    recomputation); invert it to tokens/s."""
    tflops = _float(rec["achieved_tflops_per_gpu"])
    if tflops is None:
        return None
    h, layers = model.hidden, model.num_layers
    per_token = 96 * layers * h * h * (1 + seq / (6 * h) + model.vocab / (16 * layers * h))
    return tflops * 1e12 / per_token


def _attention(rec: dict[str, str]) -> str:
    """The row's attention kernel: its `attention_kernel` column when given; else unfused for
    Megatron-LM 2021-22 (SC'21, Korthikanti), the full-square Triton kernel for llm-foundry
    (MPT with ALiBi), and FlashAttention-2 for everything else."""
    kernel = (rec.get("attention_kernel") or "").strip()
    if kernel:
        return kernel
    group = rec["source_group"].lower()
    if any(name in group for name in _MEGATRON_2021):
        return "unfused"
    return "flash-full" if "llm-foundry" in group else "flash2"


def _workload(rec: dict[str, str], batch: int) -> Workload:
    """Sequence, batch, precision, attention kernel, gradient width and loss of a row
    (torchtitan computes PyTorch's eager cross-entropy on fp32 logits)."""
    precision = rec["precision"]
    return Workload(
        seq=_int(rec["seq_len"]), global_batch=batch,
        precision="fp8" if "fp8" in precision.lower() else "bf16",
        attention=_attention(rec),
        grad_reduce_bytes=FP32_REDUCE_BYTES if "precision DEFAULT" in precision else 2,
        fused_loss="torchtitan" not in rec["source_group"].lower())


def _memory_gib(text: str) -> float | None:
    """GiB per device from "params+opt X; activations Y" (their sum) or a plain number."""
    match = _MEMORY.search(text)
    if match:
        return float(match.group(1)) + float(match.group(2))
    return _float(text)


def parse_row(rec: dict[str, str]) -> Row | None:
    """A Row from one CSV record, or None when it lacks a batch or a throughput/memory."""
    model, layout = _model(rec), _layout(rec)
    batch = _int(rec["global_batch_seqs"], 0)
    if not batch:
        return None
    workload = _workload(rec, batch)
    devices = _int(rec["num_accelerators"])
    measured = _tokens_per_s(rec, workload, devices)
    if measured is None and "SC21" in rec["source_group"]:
        measured = _sc21_tokens_per_s(rec, model, model.max_seq)
    memory = _memory_gib(rec.get("mem_GiB_per_gpu", "") or "")
    if measured is None and memory is None:
        return None
    return Row(
        row_id=rec["row_id"], group=rec["source_group"], model=model,
        accelerator=_accelerator(rec["hardware"]), layout=layout, workload=workload,
        tokens_per_s_per_device=measured, reported_tflops=_float(rec["achieved_tflops_per_gpu"]),
        memory_gib=memory,
    )


def read_rows(path: Path) -> list[Row]:
    """Every usable row of a calibration CSV."""
    with path.open(newline="") as handle:
        rows = [parse_row(rec) for rec in csv.DictReader(handle)]
    return [row for row in rows if row is not None]


def predict(row: Row) -> Result:
    """Run the planner on one row."""
    hardware = hardware_for(row.accelerator)
    return Result(row, estimate(row.model, hardware, row.layout, row.workload))


def mape(errors: list[float]) -> float:
    """Mean absolute percentage error of relative errors (0.05 = 5 %)."""
    return 100 * sum(abs(e) for e in errors) / len(errors) if errors else float("nan")


def summary(results: list[Result]) -> dict[str, dict[str, float]]:
    """MAPE of throughput and memory, overall and per source group, with row counts."""
    groups: dict[str, list[Result]] = {"all": results}
    for result in results:
        groups.setdefault(result.row.group, []).append(result)
    table = {}
    for name, members in groups.items():
        speed = [r.throughput_error for r in members if r.throughput_error is not None]
        memory = [r.memory_error for r in members if r.memory_error is not None]
        table[name] = {"throughput_rows": len(speed), "throughput_mape": mape(speed),
                       "memory_rows": len(memory), "memory_mape": mape(memory)}
    return table


def run(paths: list[Path]) -> list[Result]:
    """Predict every row of every CSV in `paths`."""
    return [predict(row) for path in paths for row in read_rows(path)]


def main(argv: list[str] | None = None) -> int:
    """CLI: print the summary; write the markdown report when asked."""
    from suan.plan.report import calibration_markdown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"calibration CSV not found: {args.csv} (skipped)")
        return 0
    results, holdout = run([args.csv]), run([HOLDOUT_CSV])
    for name, stats in {**summary(results), "holdout": summary(holdout)["all"]}.items():
        print(f"{name:48s} {stats}")
    if args.markdown:
        args.markdown.write_text(calibration_markdown(results, holdout, args.csv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
