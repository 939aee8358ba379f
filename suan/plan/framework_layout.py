"""Settings a training framework fixes for the user, applied when the command is silent or
when a word means something else in that framework.

torchtitan's tensor parallelism always shards the norms (and so the activations between the
tensor-parallel regions) by sequence: its `parallelize` plan wraps every `attention_norm`,
`ffn_norm` and the final `norm` in `SequenceParallel()` (torchtitan
`torchtitan/models/llama3/infra/parallelize.py`). A torchtitan run with tp > 1 is therefore a
sequence-parallel run, whether or not the user says so. Megatron-Bridge's recipes turn
sequence parallelism on with tensor parallelism (`recipes/llama/h100/llama3.py`: every recipe
with tp > 1 sets `sequence_parallel = True`; its performance harness sets it to tp > 1), and
its tensor-parallel recipes overlap the tensor-parallel collectives with the GEMMs
(`tp_comm_overlap=True`, Transformer Engine userbuffers). Megatron-LM leaves both to its flags,
off by default; NeMo's releases differ by recipe and are left to the flags too. Megatron-Bridge's
recipes also overlap the data-parallel gradient reduce and parameter gather with compute
(`cfg.ddp.overlap_grad_reduce = True`, `overlap_param_gather = True`).

torchtitan's "selective" activation checkpointing is per-op checkpointing
(`selective_ac_option = 'op'` in its Llama train configs; suan.plan.op_sac), not Megatron's
selective recompute of the attention core. And torchtitan, Hugging Face Transformers and plain
PyTorch loops compute the loss with eager `F.cross_entropy` on logits upcast to fp32, which
holds several copies of the logits at the loss's peak (memory.EAGER_LOSS_LOGIT_BYTES);
Megatron-Core's fused vocab-parallel cross-entropy does not.

torchtitan with pipeline parallelism does not reshard FSDP weights after forward
(`fsdp_reshard_after_forward = "default"` → `not pp_enabled`, torchtitan
`models/llama3/infra/parallelize.py`), and PyTorch's pipeline stages turn gradient sync and
resharding off for every micro-batch but the last (`torch/distributed/pipelining/stage.py`,
`backward_maybe_with_nosync`): a ZeRO-3 stage keeps its gathered weights and accumulates
unsharded fp32 gradients for the whole step (`Layout.gather_once`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from suan.plan.layout import Layout, Workload

ALWAYS_SEQUENCE_PARALLEL = {
    "torchtitan": "torchtitan's tensor-parallel plan shards norms by sequence "
                  "(SequenceParallel)",
    "megatron-bridge": "Megatron-Bridge's recipes set sequence_parallel=True whenever tp > 1",
}
"""Frameworks whose tensor parallelism is sequence-parallel by default → why."""

TP_OVERLAP = {
    "megatron-bridge": "Megatron-Bridge's recipes with tp > 1 set tp_comm_overlap=True "
                       "(Transformer Engine userbuffers)",
}
"""Frameworks whose tensor-parallel collectives overlap the GEMMs by default → why."""


def _decided(option: bool | None, table: dict[str, str], framework: str | None,
             applies: bool, setting: str) -> tuple[bool, str]:
    """`option` when the user gave one; else on, with a note naming `setting` and the reason,
    when `framework` is in `table` and the setting `applies` to the layout; else off."""
    if option is not None:
        return option, ""
    why = table.get(framework or "")
    if why and applies:
        return True, f"{setting} (--framework {framework}: {why})"
    return False, ""


def sequence_parallel(option: bool | None, framework: str | None, tp: int) -> tuple[bool, str]:
    """Whether a plan uses sequence parallelism, and a note when the framework decided it:
    the `option` when given, else on for `ALWAYS_SEQUENCE_PARALLEL` frameworks at tp > 1."""
    return _decided(option, ALWAYS_SEQUENCE_PARALLEL, framework, tp > 1,
                    "sequence parallelism on")


SELECTIVE_IS_PER_OP = {
    "torchtitan": "torchtitan's selective checkpointing is per-op (selective_ac_option 'op' in "
                  "its Llama train configs): every other matmul output and the attention "
                  "outputs are saved, the rest recomputed",
}
"""Frameworks whose `selective` activation checkpointing is per-op → why."""

EAGER_LOSS_FRAMEWORKS = frozenset({"torchtitan", "hf", "pytorch"})
"""Frameworks whose loss is eager `F.cross_entropy` on fp32-upcast logits."""


def recompute_mode(option: str, framework: str | None) -> tuple[str, str]:
    """The planner's recompute mode for `--recompute option` under `framework`, and a note
    when the framework gave the word its own meaning."""
    why = SELECTIVE_IS_PER_OP.get(framework or "")
    if option == "selective" and why:
        return "op", f"recompute op (--framework {framework}: {why})"
    return option, ""


def fused_loss(framework: str | None) -> bool:
    """False when the framework's loss is eager cross-entropy on upcast logits."""
    return framework not in EAGER_LOSS_FRAMEWORKS


GATHER_ONCE_WITH_PP = {
    "torchtitan": "torchtitan keeps FSDP weights gathered under pipeline parallelism and "
                  "PyTorch's pipeline stages defer the gradient reduce-scatter to the last "
                  "micro-batch",
}
"""Frameworks whose ZeRO-3 gathers once per step when pp > 1 → why."""


def gather_once(framework: str | None, pp: int, zero: int) -> tuple[bool, str]:
    """Whether ZeRO-3 gathers once per step under `framework`, and a note when it does."""
    return _decided(None, GATHER_ONCE_WITH_PP, framework, pp > 1 and zero == 3,
                    "FSDP weights gathered once per step")


def tp_overlap(option: bool | None, framework: str | None, tp: int) -> tuple[bool, str]:
    """Whether tensor-parallel collectives overlap the GEMMs: the option when given, else on
    for `TP_OVERLAP` frameworks at tp > 1, with a note."""
    return _decided(option, TP_OVERLAP, framework, tp > 1, "tensor-parallel overlap on")


DP_OVERLAP = {
    "megatron-bridge": "Megatron-Bridge's recipes set overlap_grad_reduce and "
                       "overlap_param_gather",
}
"""Frameworks whose data-parallel collectives overlap compute by design → why."""


def dp_overlap(option: bool | None, framework: str | None) -> tuple[bool, str]:
    """Whether data-parallel collectives overlap compute by design: the option when given,
    else on for `DP_OVERLAP` frameworks, with a note."""
    return _decided(option, DP_OVERLAP, framework, True, "data-parallel overlap on")


@dataclass(frozen=True)
class Said:
    """What the user said about the framework-decided settings; None: not said."""

    sequence_parallel: bool | None = None
    tp_overlap: bool | None = None
    dp_overlap: bool | None = None


def adapt(layout: Layout, workload: Workload, framework: str | None,
          said: Said = Said()) -> tuple[Layout, Workload, tuple[str, ...]]:
    """`layout` and `workload` as `framework` runs them (every rule of this module; what the
    user `said` wins), and a note for each rule that changed something."""
    if not framework:
        return layout, workload, ()
    sp, sp_note = sequence_parallel(said.sequence_parallel, framework, layout.tp)
    mode, mode_note = recompute_mode(layout.recompute, framework)
    once, once_note = gather_once(framework, layout.pp, layout.zero)
    tp_hidden, tp_note = tp_overlap(said.tp_overlap, framework, layout.tp)
    dp_hidden, dp_note = dp_overlap(said.dp_overlap, framework)
    fused = fused_loss(framework)
    loss_note = "" if fused else (f"loss is eager F.cross_entropy on fp32-upcast logits "
                                  f"(--framework {framework})")
    adapted = replace(layout, sequence_parallel=sp, recompute=mode, gather_once=once,
                      tp_overlap=tp_hidden, dp_overlap=dp_hidden)
    notes = tuple(note for note in (sp_note, mode_note, once_note, tp_note, dp_note, loss_note)
                  if note)
    return adapted, replace(workload, fused_loss=fused), notes
