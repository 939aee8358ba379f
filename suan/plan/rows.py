"""Published measurements as planner inputs: one CSV record → one `Row` (model, accelerator,
layout, workload, what was measured).

The columns are those of ../shared/planner/calibration.csv (documented in its header) plus the
optional `builtin_model`, `attention_kernel` and `notes` of `holdout.csv`. A record is skipped
(None) when it has no global batch, no throughput or memory to compare, or an accelerator the
catalog does not know.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path

from suan.plan.flops import hardware_flops_per_token, model_flops_per_token
from suan.plan.hardware import Hardware, hardware_for
from suan.plan.layout import Layout, Workload
from suan.plan.models import ModelSpec, load_model
from suan.plan.stages import PIPELINE_PSEUDO_LAYERS

MEGATRON_VOCAB = 51200
"""GPT-2 BPE vocabulary padded to a multiple of 1024 as Megatron-LM does (SC'21 §5.1)."""

_MEMORY = re.compile(r"params\+opt\s+([\d.]+);\s*activations\s+([\d.]+)")

FP32_REDUCE_BYTES = 4
"""Gradient bytes on the wire when a run reduces in fp32: Composer's FSDP mixed-precision mode
"DEFAULT" sets `reduce_dtype=torch.float32` (composer/trainer/mosaic_fsdp_utils.py,
`get_mixed_precision`, torch 2.0-2.2 releases), the mode of the llm-foundry H100 and most
A100-80GB rows; "PURE" reduces in bf16."""


_MEGATRON_2021 = ("megatron-lm sc21", "megatron-lm readme", "korthikanti")

H100_96GB = "H100-96GB-HBM2e"
HARDWARE_VARIANTS: dict[str, tuple[str, dict[str, float]]] = {
    H100_96GB: ("H100", {"memory_gib": 96.0, "hbm_gbs": 2400.0, "bf16_tflops": 912.0,
                         "fp8_tflops": 1824.0}),
}
"""Parts in published runs that the catalog lacks. The H100 96 GB HBM2e at 500 W of Meta's
Grand Teton (torchtitan docs/performance.md): 2.4 TB/s; its peak is "between SXM and NVL" (the
doc's footnote), taken as the midpoint of the SXM (989) and NVL (835) dense BF16 figures."""

GATED_FAMILIES = re.compile(r"llama|mistral|mixtral|qwen|deepseek|gemma|yi-|baichuan|internlm",
                            re.IGNORECASE)
"""Model names whose families use gated (SwiGLU/GeGLU) MLPs, rotary positions, no biases and
untied embeddings (their HuggingFace configs)."""


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
    group = rec["source_group"].lower()
    megatron = "megatron" in group or "korthikanti" in group
    gated = bool(GATED_FAMILIES.search(rec["model_name"]))
    experts = _int(rec.get("moe_num_experts", ""), 0)
    model = ModelSpec(
        name=rec["model_name"], num_layers=_int(rec["num_layers"]), hidden=hidden,
        ffn=_int(rec["ffn_hidden_size"], 4 * hidden), heads=heads,
        kv_heads=_int(rec["num_kv_heads"], heads), vocab=_int(rec["vocab_size"], MEGATRON_VOCAB),
        max_seq=_int(rec["seq_len"]), head_dim=hidden // heads, v_head_dim=hidden // heads,
        gated_mlp=gated, biases=megatron and not gated, tied_embeddings=not gated,
        learned_positions=megatron and not gated, num_experts=experts,
        topk=_int(rec.get("moe_topk", ""), 2) if experts else 0,
        expert_ffn=_int(rec.get("moe_expert_ffn_size", ""), 0) or _int(rec["ffn_hidden_size"],
                                                                       4 * hidden),
    )
    return _pipeline_padded(model, rec)


def _pipeline_padded(model: ModelSpec, rec: dict[str, str]) -> ModelSpec:
    """`model` with the embedding and loss pseudo-layers added when its layers alone do not
    split over the row's pp · vpp chunks but Megatron's accounting for them does."""
    chunks = _int(rec["pp"]) * _int(rec["virtual_pp"])
    padded = model.num_layers + PIPELINE_PSEUDO_LAYERS
    if model.num_layers % chunks and padded % chunks == 0:
        return replace(model, num_layers=padded)
    return model


def _recompute(text: str) -> str:
    """Recompute mode from text: "selective ..." / "partial"; "none" / "no"; "full ..." /
    "yes" / "activation checkpointing". Unstated (empty) is taken as selective, Megatron-Core's
    usual setting, which with fused attention costs only the attention core."""
    text = text.strip().lower()
    if text.startswith(("selective", "partial")):
        return "selective"
    if text.startswith(("none", "no ", "off", "false")) or text == "no":
        return "none"
    return "full" if text else "selective"


def _zero(text: str) -> int:
    """ZeRO stage from text: "ZeRO-2" / "zero stage 1" / "distributed optimizer" (1) / FSDP,
    full shard (3); anything else (DDP, none) is 0."""
    text = text.lower()
    stage = re.search(r"zero[- _]?(?:stage[- _]?)?([0-3])", text)
    if stage:
        return int(stage.group(1))
    if "distributed optimizer" in text or "shard_grad_op" in text:
        return 1 if "distributed optimizer" in text else 2
    return 3 if "fsdp" in text or "full_shard" in text else 0


def _layout(rec: dict[str, str]) -> Layout:
    """The row's layout; a blank dp is the devices left by tp · pp · cp."""
    zero = _zero(rec["zero_or_fsdp"])
    tp, pp, cp = _int(rec["tp"]), _int(rec["pp"]), _int(rec["cp"])
    dp = _int(rec["dp"], 0) or max(1, _int(rec["num_accelerators"]) // (tp * pp * cp))
    return Layout(
        tp=tp, pp=pp, dp=dp, cp=cp,
        vpp=_int(rec["virtual_pp"]), micro_batch=_int(rec["micro_batch_seqs"]), zero=zero,
        recompute=_recompute(rec["activation_recompute"]),
        sequence_parallel=rec["sequence_parallel"].strip().lower() == "yes",
    )


ACCELERATOR_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H100.*96\s*GB", H100_96GB),
    (r"H800", "H800"),
    (r"H200", "H200"),
    (r"\bH20\b", "H20"),
    (r"H100", "H100"),
    (r"A800", "A800"),
    (r"A100.*40\s*GB", "A100-40GB"),
    (r"A100", "A100-80GB"),
    (r"910B", "Ascend-910B"),
    (r"910C", "Ascend-910C"),
    (r"MI300X", "MI300X"),
    (r"V100.*16\s*GB", "V100-16GB"),
    (r"V100", "V100-32GB"),
)
"""Hardware text of a row → catalog name, first match wins (H20 before H100, 40 GB before the
80 GB A100 default). Other text (TPU, ...) is not a catalog type and its rows are skipped."""


def _accelerator(hardware: str) -> str | None:
    text = hardware.upper()
    for pattern, name in ACCELERATOR_PATTERNS:
        if re.search(pattern, text):
            return name
    return None


def hardware_of(accelerator: str) -> Hardware:
    """The planner's Hardware for a row's accelerator, including HARDWARE_VARIANTS."""
    if accelerator in HARDWARE_VARIANTS:
        base, changes = HARDWARE_VARIANTS[accelerator]
        return replace(hardware_for(base), name=accelerator, **changes)
    return hardware_for(accelerator)


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


def _reported_tflops(rec: dict[str, str]) -> float | None:
    """TFLOP/s per device as published, or MFU × the peak the source assumed."""
    tflops = _float(rec.get("achieved_tflops_per_gpu", ""))
    mfu, peak = _float(rec.get("mfu_pct", "")), _float(rec.get("peak_tflops_assumed", ""))
    if tflops is None and mfu and peak:
        tflops = mfu / 100 * peak
    return tflops


def _tflops_tokens_per_s(rec: dict[str, str], model: ModelSpec, layout: Layout,
                         workload: Workload) -> float | None:
    """Tokens/s per device from a row that publishes only TFLOP/s (or MFU), read with the FLOP
    convention its `flops_counting_note` names: hardware FLOPs when the count includes
    recomputation (HFU), model FLOPs otherwise; causal attention when the note says so, the
    full square (PaLM / 6N + 12Lhs) otherwise."""
    tflops = _reported_tflops(rec)
    if tflops is None:
        return None
    note = (rec.get("flops_counting_note") or "").lower()
    convention = "causal" if "causal" in note else "full"
    if "hfu" in note or "incl. recompute" in note or "4*2" in note:
        per_token = hardware_flops_per_token(model, workload.seq, layout.recompute, convention)
    else:
        per_token = model_flops_per_token(model, workload.seq, convention)
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
    """A Row from one CSV record, or None when it lacks a batch, a throughput or memory, or a
    known accelerator. Throughput is the published tokens/s, else tokens over iteration time,
    else SC'21's Eq. 3 inverted, else published TFLOP/s read with the row's FLOP convention."""
    model, layout = _model(rec), _layout(rec)
    batch = _int(rec["global_batch_seqs"], 0)
    if not batch:
        return None
    workload = _workload(rec, batch)
    devices = _int(rec["num_accelerators"])
    measured = _tokens_per_s(rec, workload, devices)
    if measured is None and "SC21" in rec["source_group"]:
        measured = _sc21_tokens_per_s(rec, model, model.max_seq)
    if measured is None:
        measured = _tflops_tokens_per_s(rec, model, layout, workload)
    memory = _memory_gib(rec.get("mem_GiB_per_gpu", "") or "")
    accelerator = _accelerator(rec["hardware"])
    if (measured is None and memory is None) or accelerator is None:
        return None
    return Row(
        row_id=rec["row_id"], group=rec["source_group"], model=model,
        accelerator=accelerator, layout=layout, workload=workload,
        tokens_per_s_per_device=measured, reported_tflops=_float(rec["achieved_tflops_per_gpu"]),
        memory_gib=memory,
    )


def read_rows(path: Path) -> list[Row]:
    """Every usable row of a calibration CSV."""
    with path.open(newline="") as handle:
        rows = [parse_row(rec) for rec in csv.DictReader(handle)]
    return [row for row in rows if row is not None]


