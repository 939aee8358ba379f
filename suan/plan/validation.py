"""Published training runs as the `suan plan estimate` calls a user would make for them.

The validation rows (`validation.csv`, `validation-2.csv`, `validation-3.csv`) were never used
to fit anything; each file is frozen by the sha256 in `FROZEN_FILES`
(tests/test_plan_validation.py checks it), so a model change is judged on rows chosen before
it. More rows go into a new file with its own pinned hash; a row is never edited, removed or
moved into calibration after its error was seen.

`read_cases(path)` turns each row of a validation file or `holdout.csv` into a `Case`: the
model (a built-in name, or a config.json document in the dialect its authors publish), the
accelerator and device count, the published layout, and what was measured. `estimate_args`
words a case as the command line's options.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent
VALIDATION_CSV = DATA_DIR / "validation.csv"
HOLDOUT_CSV = DATA_DIR / "holdout.csv"

FROZEN_FILES: dict[str, str] = {
    "validation.csv": "82ca6c93fcdfc0a2be713b9d5eb1b9213d5bdde1c2e704921c80e14a499d7db7",
    "validation-2.csv": "fe46c7b9ea6df631b4ffa3589917a2182953a4bc9bc712ed9d36004416ebd869",
    "validation-3.csv": "5e221b3aeaec285331fe90a7c6f12b983fa7910a2607ec304fb181617c14d045",
}
"""sha256 of each frozen validation file in this directory, pinned when it was committed."""

VALIDATION_FILES = tuple(DATA_DIR / name for name in FROZEN_FILES)
"""Every frozen validation file, in the order they were added."""

KINDS = ("large-3d", "h100-fp8", "fsdp", "long-context")
"""Groups of runs: large tensor/pipeline-parallel (Megatron-style) runs; NVIDIA's FP8
recipes (NeMo, Megatron-Bridge); FSDP runs; context-parallel runs at 32K tokens and more."""

BANDS = ((1024, "<=1k"), (4096, "2-4k"), (65536, "8-64k"))
"""Sequence-length bands (upper bound inclusive, label); anything longer is ">64k"."""

MEGATRON_VOCAB = 51200
"""GPT-2's BPE vocabulary padded as Megatron-LM does, for GPT rows that print none."""

_FRAMEWORKS = (("llm-foundry", "llm-foundry"), ("torchtitan", "torchtitan"),
               ("megatron-bridge", "megatron-bridge"), ("nemo", "nemo"),
               ("megatron", "megatron"))
"""Source-group text → the framework a user names, first match wins (hold-out rows carry no
`framework` column)."""


@dataclass(frozen=True)
class Case:
    """One published run as a user's `suan plan estimate` call, plus what was measured."""

    row_id: str
    source: str
    kind: str
    framework: str
    model: str
    """A built-in model name, or a name for `config` (written to a file by the caller)."""
    config: dict[str, Any] | None
    accelerator: str
    devices: int
    options: dict[str, Any] = field(default_factory=dict)
    """The layout and workload options, keyed by option name without the dashes."""
    tokens_per_s_per_device: float | None = None
    memory_gib: float | None = None

    @property
    def seq(self) -> int:
        return int(self.options["seq"])

    @property
    def precision(self) -> str:
        return str(self.options.get("precision", "bf16"))

    @property
    def band(self) -> str:
        return sequence_band(self.seq)


def sequence_band(seq: int) -> str:
    """'<=1k', '2-4k', '8-64k' or '>64k' for a sequence length in tokens."""
    for limit, label in BANDS:
        if seq <= limit:
            return label
    return ">64k"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(float(text)) if re.fullmatch(r"\d+(\.\d+)?", text) else None


def _float(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if re.fullmatch(r"\d+(\.\d+)?", text) else None


def _zero(text: str) -> int:
    """ZeRO stage named by a row: a distributed optimizer 1 (Megatron-Bridge writes its DDP
    runs "FSDP=0"), FSDP / full shard 3, else 0."""
    text = text.lower()
    if "distributed optimizer" in text:
        return 1
    return 3 if "fsdp" in text or "full_shard" in text else 0


def _recompute(text: str) -> str | None:
    """none / selective / full from a row's text; None when the source does not say."""
    text = text.strip().lower()
    if not text:
        return None
    if text.startswith(("selective", "partial")):
        return "selective"
    if text.startswith(("none", "no", "off")):
        return "none"
    return "full"


def _framework(rec: dict[str, str]) -> str:
    named = (rec.get("framework") or "").strip()
    if named:
        return named
    group = rec["source_group"].lower()
    return next((name for key, name in _FRAMEWORKS if key in group), "")


def _kind(rec: dict[str, str], framework: str, options: dict[str, Any]) -> str:
    """The row's `kind`, else: context-parallel at 32K+ → long-context; FSDP → fsdp;
    NeMo / Megatron-Bridge FP8 → h100-fp8; anything else → large-3d."""
    named = (rec.get("kind") or "").strip()
    if named:
        return named
    if options["cp"] > 1 and options["seq"] >= 32768:
        return "long-context"
    if options["zero"] == 3:
        return "fsdp"
    if framework in ("nemo", "megatron-bridge") and options["precision"] == "fp8":
        return "h100-fp8"
    return "large-3d"


def _accelerator(rec: dict[str, str]) -> str:
    """The catalog name a user passes: the row's `accelerator`, else read from its hardware
    text (a 96 GB H100 is passed as H100: the catalog has no such part)."""
    named = (rec.get("accelerator") or "").strip()
    if named:
        return named
    text = rec["hardware"].upper()
    if "A100" in text:
        return "A100-40GB" if re.search(r"40\s*GB", text) else "A100-80GB"
    for name in ("H200", "H800", "H100"):
        if name in text:
            return name
    return rec["hardware"].strip()


LLM_FOUNDRY_ATTN_CONFIG = {"attn_impl": "triton", "alibi": False}
"""The `attn_config` of the MPT models llm-foundry's benchmark tables ran: its pretraining
yamls (scripts/train/yamls/pretrain/mpt-*.yaml) and `submit_benchmarks.py --attn_impl` (default
'triton') at the commit the tables cite, 061f2c7 (2023-10), with MPTConfig's defaults of that
commit (learned positional embeddings, no ALiBi). The run's own config names its kernel, as the
config.json on a user's disk would."""


def _config_document(rec: dict[str, str]) -> dict[str, Any]:
    """The config.json its authors publish for a model the row gives by its shape: MPT's own
    keys for llm-foundry's MPT models (with the benchmark runs' `attn_config`), GPT-2's for
    GPT-3-style models."""
    layers, hidden = _int(rec["num_layers"]) or 0, _int(rec["hidden_size"]) or 0
    heads = _int(rec["num_attention_heads"]) or 0
    ffn = _int(rec["ffn_hidden_size"]) or 4 * hidden
    vocab = _int(rec["vocab_size"]) or MEGATRON_VOCAB
    seq = _int(rec["seq_len"]) or 2048
    if rec["model_name"].lower().startswith("mpt"):
        return {"_name": rec["model_name"], "model_type": "mpt", "d_model": hidden,
                "n_heads": heads, "n_layers": layers, "expansion_ratio": ffn // hidden,
                "max_seq_len": seq, "vocab_size": vocab,
                "attn_config": dict(LLM_FOUNDRY_ATTN_CONFIG)}
    return {"_name": rec["model_name"], "model_type": "gpt2", "n_layer": layers,
            "n_embd": hidden, "n_head": heads, "n_inner": ffn, "n_positions": seq,
            "vocab_size": vocab, "activation_function": "gelu"}


def _options(rec: dict[str, str]) -> dict[str, Any]:
    """Layout and workload options as published; an unprinted setting is left out, so the
    command's default applies as it would for the user."""
    tp, pp, cp = (_int(rec[key]) or 1 for key in ("tp", "pp", "cp"))
    devices = _int(rec["num_accelerators"]) or 1
    options: dict[str, Any] = {
        "tp": tp, "pp": pp, "cp": cp, "dp": _int(rec["dp"]) or max(1, devices // (tp * pp * cp)),
        "ep": _int(rec.get("ep")) or 1, "vpp": _int(rec["virtual_pp"]) or 1,
        "global-batch": _int(rec["global_batch_seqs"]), "seq": _int(rec["seq_len"]),
        "zero": _zero(rec["zero_or_fsdp"]),
        "precision": "fp8" if "fp8" in rec["precision"].lower() else "bf16",
    }
    micro_batch = _int(rec["micro_batch_seqs"])
    if micro_batch:
        options["micro-batch"] = micro_batch
    recompute = _recompute(rec["activation_recompute"])
    if recompute:
        options["recompute"] = recompute
    if rec["sequence_parallel"].strip().lower() == "yes":
        options["sequence-parallel"] = True
    recipe = (rec.get("fp8_recipe") or "").strip()
    if recipe and options["precision"] == "fp8":
        options["fp8-recipe"] = recipe
    return options


def parse_case(rec: dict[str, str]) -> Case | None:
    """A Case from one CSV record; None when it measured neither throughput nor memory, or
    gives no global batch or sequence length."""
    tokens, memory = _float(rec["tokens_per_s_per_gpu"]), _float(rec["mem_GiB_per_gpu"])
    options = _options(rec)
    if (tokens is None and memory is None) or not options["global-batch"] or not options["seq"]:
        return None
    builtin = (rec.get("config") or rec.get("builtin_model") or "").strip()
    framework = _framework(rec)
    return Case(
        row_id=rec["row_id"], source=rec["source_group"], kind=_kind(rec, framework, options),
        framework=framework, model=builtin or rec["model_name"],
        config=None if builtin else _config_document(rec), accelerator=_accelerator(rec),
        devices=_int(rec["num_accelerators"]) or 1, options=options,
        tokens_per_s_per_device=tokens, memory_gib=memory)


def read_cases(path: Path) -> list[Case]:
    """Every usable row of a validation or hold-out CSV, in file order."""
    with path.open(newline="") as handle:
        cases = [parse_case(rec) for rec in csv.DictReader(handle)]
    return [case for case in cases if case is not None]


def estimate_args(case: Case, model_ref: str, accepted: frozenset[str]) -> list[str]:
    """`suan plan estimate` arguments for `case`, with `model_ref` as --model. Options the
    command does not take (`accepted` holds those it does, e.g. '--fp8-recipe') are left out,
    as a user of that version could not pass them; --framework is passed when taken."""
    args = ["plan", "estimate", "--model", model_ref, "--accelerator", case.accelerator,
            "--devices", str(case.devices), "--json"]
    options = dict(case.options)
    if case.framework:
        options["framework"] = case.framework
    for name, value in options.items():
        flag = f"--{name}"
        if flag not in accepted:
            continue
        args += [flag] if value is True else [flag, str(value)]
    return args
