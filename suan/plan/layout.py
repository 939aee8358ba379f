"""The parallel layout of a training job and the workload it runs, with their validity rules.

A `Layout` splits `devices = tp · pp · dp · cp` devices: tensor (tp), pipeline (pp, with `vpp`
virtual stages per device for the interleaved schedule), data (dp, with ZeRO stage `zero`) and
context (cp) parallelism; expert parallelism (ep) is carved out of dp · cp as in Megatron-Core.
Pipeline stages may hold unequal layer counts (stages.py: Megatron's first/last-stage counts,
or its embedding- and loss-accounted split by default). Sequence parallelism with tp = 1 is
accepted and does nothing (`estimate` notes it).
`layout_problems` lists every rule a layout breaks, each naming the CLI option at fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from suan.errors import FieldProblem, SpecError
from suan.plan.fp8 import RECIPES
from suan.plan.models import ModelSpec
from suan.plan.stages import StageProblem, stage_layers_or_problem

RECOMPUTE_MODES = ("none", "selective", "full", "op")
CP_COMM_TYPES = ("p2p", "all_gather", "a2a")
"""Megatron-Core's `--cp-comm-type` names for context parallelism's exchange (Layout.cp_comm)."""
ATTENTION_KERNELS = ("unfused", "flash-full", "flash2", "flash3")
"""How the attention core runs. `unfused`: scores materialised in HBM, the whole s² square
computed (Megatron-LM 2021-22 fused softmax). `flash-full`: a fused FlashAttention-2-generation
kernel that computes the whole square (the Triton ALiBi kernel of llm-foundry's MPT runs).
`flash2`: FlashAttention-2, fused and skipping the masked half of causal attention. `flash3`:
FlashAttention-3 / cuDNN fused attention, as `flash2` but at the Hopper-native speed
(`Hardware.attention_fraction_flash3`; the same as flash2 on other parts)."""
CAUSAL_SKIP_KERNELS = ("flash2", "flash3")
PRECISIONS = ("bf16", "fp8")
ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True)
class Layout:
    """Degrees of parallelism and the per-device execution choices."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    vpp: int = 1
    micro_batch: int = 1
    zero: int = 1
    recompute: str = "selective"
    sequence_parallel: bool = False
    first_stage_layers: int | None = None
    last_stage_layers: int | None = None
    cp_comm: str = "p2p"
    """How context parallelism exchanges keys and values (CP_COMM_TYPES): `p2p` ring attention
    (K/V chunks passed round the ring, overlapped with the attention core), `all_gather` (the
    whole sequence's K/V gathered before attention, Llama 3's CP), `a2a` (all-to-all to split
    heads instead of the sequence, DeepSpeed-Ulysses)."""
    tp_overlap: bool = False
    """Tensor-parallel collectives overlapped with the GEMMs (Megatron-Core's
    `tp_comm_overlap` with Transformer Engine userbuffers); otherwise on the critical path."""
    dp_overlap: bool = False
    """Data-parallel collectives overlapped with compute by design (Megatron-Core's
    overlap_grad_reduce / overlap_param_gather, Megatron-FSDP); otherwise they cost what
    2023-24 FSDP/DDP stacks were measured to pay (efficiency.OVERLAP_INTERFERENCE)."""
    gather_once: bool = False
    """ZeRO-3 only: the weights are gathered once per step and kept, and the gradients
    accumulate unsharded (fp32) until the last micro-batch, as PyTorch's pipeline schedules
    drive FSDP2 (no resharding and no gradient sync between micro-batches)."""

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def describe(self) -> str:
        """Short human text, e.g. 'tp8 pp4 dp32 mb1 zero1 selective sp tp-overlap' (the
        non-default CP exchange, overlaps and gather-once are named after the flags)."""
        parts = [f"tp{self.tp}", f"pp{self.pp}", f"dp{self.dp}"]
        parts += [f"cp{self.cp}"] if self.cp > 1 else []
        parts += [f"ep{self.ep}"] if self.ep > 1 else []
        parts += [f"vpp{self.vpp}"] if self.vpp > 1 else []
        if self.first_stage_layers is not None or self.last_stage_layers is not None:
            parts += [f"stages{self.first_stage_layers or '-'}/{self.last_stage_layers or '-'}"]
        parts += [f"mb{self.micro_batch}", f"zero{self.zero}", self.recompute]
        flags = {"sp": self.sequence_parallel,
                 f"cp-{self.cp_comm}": self.cp > 1 and self.cp_comm != "p2p",
                 "tp-overlap": self.tp_overlap, "dp-overlap": self.dp_overlap,
                 "gather-once": self.gather_once}
        return " ".join(parts + [name for name, on in flags.items() if on])


@dataclass(frozen=True)
class Workload:
    """What one optimizer step processes: `global_batch` sequences of `seq` tokens.

    `attention` names the attention kernel (ATTENTION_KERNELS; the default is the current
    FlashAttention-3 / cuDNN generation). `grad_reduce_bytes` is the width of a
    gradient element on the wire: 2 (bf16 reduction, Megatron-Core and FSDP "pure" mixed
    precision) or 4 (fp32 reduction, e.g. Composer's FSDP "DEFAULT" mixed precision).
    `fp8_recipe` sets what an FP8 run's casts cost (suan.plan.fp8).
    """

    seq: int
    global_batch: int
    precision: str = "bf16"
    attention: str = "flash3"
    grad_reduce_bytes: int = 2
    fused_loss: bool = True
    fp8_recipe: str = ""
    """The FP8 scaling recipe (suan.plan.fp8.RECIPES) of an FP8 run; "" means delayed. Another
    name is a layout problem (`fp8_recipe`), not a silent delayed."""

    @property
    def tokens(self) -> int:
        return self.seq * self.global_batch

    @property
    def flash_attention(self) -> bool:
        """True when the attention core is fused and keeps no s² score tensors."""
        return self.attention != "unfused"

    @property
    def causal_skip(self) -> bool:
        """True when the kernel skips the fully masked half of causal attention."""
        return self.attention in CAUSAL_SKIP_KERNELS


@dataclass(frozen=True)
class LayoutProblem(FieldProblem):
    """A broken layout rule; `reason` is a fixed label used to count rejections in search."""

    reason: str = ""


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def microbatches(layout: Layout, workload: Workload) -> int:
    """Micro-batches per pipeline per step: global batch / (dp · micro-batch)."""
    return workload.global_batch // (layout.dp * layout.micro_batch)


def _degree_problems(model: ModelSpec, layout: Layout) -> list[LayoutProblem]:
    problems = []
    for field_name in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch"):
        if getattr(layout, field_name) < 1:
            problems.append(LayoutProblem(field_name, "must be at least 1", ">= 1", "degree < 1"))
    if problems:
        return problems
    if model.heads % layout.tp or (model.kv_heads % layout.tp and layout.tp % model.kv_heads):
        problems.append(LayoutProblem(
            "tp", f"{layout.tp} does not divide num_attention_heads={model.heads} "
            f"(num_key_value_heads={model.kv_heads})", _divisors(model.heads),
            "tp does not divide the attention heads"))
    counts = stage_layers_or_problem(model.num_layers, layout)
    if isinstance(counts, StageProblem):
        problems.append(LayoutProblem(*counts))
    if layout.vpp > 1 and layout.pp == 1:
        problems.append(LayoutProblem("vpp", "interleaving needs pp > 1", "1 when pp = 1",
                                      "vpp without pipeline"))
    return problems + _expert_problems(model, layout)


def _expert_problems(model: ModelSpec, layout: Layout) -> list[LayoutProblem]:
    if layout.ep == 1:
        return []
    if not model.is_moe:
        return [LayoutProblem("ep", f"{model.name} has no experts", "1", "ep on a dense model")]
    problems = []
    if model.num_experts % layout.ep:
        problems.append(LayoutProblem(
            "ep", f"{layout.ep} does not divide the {model.num_experts} experts",
            _divisors(model.num_experts), "ep does not divide the experts"))
    if (layout.dp * layout.cp) % layout.ep:
        problems.append(LayoutProblem(
            "ep", f"{layout.ep} does not divide dp·cp = {layout.dp * layout.cp}",
            _divisors(layout.dp * layout.cp), "ep does not divide dp·cp"))
    return problems


def _kv_heads_per_rank(model: ModelSpec, layout: Layout) -> int:
    """Key/value heads on one tensor-parallel rank: kv_heads / tp, or one replicated head
    when tp is a multiple of kv_heads."""
    return max(1, model.kv_heads // layout.tp)


def _workload_problems(model: ModelSpec, layout: Layout, workload: Workload,
                       ) -> list[LayoutProblem]:
    problems = []
    if workload.seq < 1 or workload.global_batch < 1:
        return [LayoutProblem("seq", "sequence length and global batch must be >= 1", ">= 1",
                              "empty workload")]
    if layout.cp_comm not in CP_COMM_TYPES:
        problems.append(LayoutProblem("cp_comm", f"unknown type {layout.cp_comm!r}",
                                      ", ".join(CP_COMM_TYPES), "bad cp comm"))
    elif layout.cp_comm == "a2a" and _kv_heads_per_rank(model, layout) % layout.cp:
        problems.append(LayoutProblem(
            "cp", f"a2a splits heads: cp {layout.cp} does not divide the "
            f"{_kv_heads_per_rank(model, layout)} key/value heads left per tp rank "
            f"({model.kv_heads} / tp {layout.tp})",
            "a cp dividing kv_heads / tp, or --cp-comm p2p / all_gather",
            "cp does not divide the heads"))
    if workload.seq % layout.cp or (layout.cp > 1 and (workload.seq // layout.cp) % 2):
        problems.append(LayoutProblem(
            "cp", f"{layout.cp} does not split seq={workload.seq} into even chunks",
            "a cp with seq divisible by 2·cp", "cp does not divide the sequence"))
    per_replica = layout.dp * layout.micro_batch
    if workload.global_batch % per_replica:
        problems.append(LayoutProblem(
            "global_batch", f"{workload.global_batch} is not a multiple of dp·micro-batch = "
            f"{layout.dp}·{layout.micro_batch}", f"a multiple of {per_replica}",
            "global batch not divisible by dp·micro-batch"))
    elif layout.vpp > 1 and microbatches(layout, workload) % layout.pp:
        problems.append(LayoutProblem(
            "vpp", f"the interleaved schedule needs micro-batches ({microbatches(layout, workload)}"
            f") divisible by pp={layout.pp}", "vpp 1, or a batch giving a multiple of pp",
            "interleaving needs micro-batches divisible by pp"))
    return problems


def _choice_problems(layout: Layout, workload: Workload) -> list[LayoutProblem]:
    problems = []
    if layout.recompute not in RECOMPUTE_MODES:
        problems.append(LayoutProblem("recompute", f"unknown mode {layout.recompute!r}",
                                      ", ".join(RECOMPUTE_MODES), "bad recompute"))
    if layout.zero not in ZERO_STAGES:
        problems.append(LayoutProblem("zero", f"unknown ZeRO stage {layout.zero!r}", "0, 1, 2, 3",
                                      "bad zero stage"))
    if workload.attention not in ATTENTION_KERNELS:
        problems.append(LayoutProblem("attention", f"unknown kernel {workload.attention!r}",
                                      ", ".join(ATTENTION_KERNELS), "bad attention kernel"))
    if workload.precision not in PRECISIONS:
        problems.append(LayoutProblem("precision", f"unknown precision {workload.precision!r}",
                                      ", ".join(PRECISIONS), "bad precision"))
    if workload.fp8_recipe and workload.fp8_recipe not in RECIPES:
        problems.append(LayoutProblem("fp8_recipe", f"unknown FP8 recipe {workload.fp8_recipe!r}",
                                      ", ".join(RECIPES), "bad fp8 recipe"))
    elif workload.fp8_recipe and workload.precision != "fp8":
        problems.append(LayoutProblem(
            "fp8_recipe", f"an FP8 recipe ({workload.fp8_recipe}) needs precision fp8, not "
            f"{workload.precision!r}", "precision fp8, or no recipe", "fp8 recipe without fp8"))
    return problems


def layout_problems(model: ModelSpec, layout: Layout, workload: Workload,
                    devices: int | None = None) -> list[LayoutProblem]:
    """Every rule `layout` breaks for this model and workload (empty when valid)."""
    problems = _degree_problems(model, layout)
    if problems:
        return problems
    if devices is not None and devices != layout.devices:
        problems.append(LayoutProblem(
            "devices", f"{devices} != tp·pp·dp·cp = {layout.tp}·{layout.pp}·{layout.dp}·"
            f"{layout.cp} = {layout.devices}", "choose degrees whose product is the device "
            "count", "devices != tp·pp·dp·cp"))
    return problems + _workload_problems(model, layout, workload) + _choice_problems(
        layout, workload)


def check_layout(model: ModelSpec, layout: Layout, workload: Workload,
                 devices: int | None = None) -> None:
    """Raise SpecError listing every broken rule; return quietly when the layout is valid."""
    problems = layout_problems(model, layout, workload, devices)
    if problems:
        raise SpecError("plan layout", list(problems))
