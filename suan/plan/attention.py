"""Which attention kernel a run uses, and why: an input of the planner, not a guess per source.

`choose_attention(model, option, framework)` decides, in this order:

1. `--attention` (a planner kernel name or an implementation name, `KERNEL_ALIASES`);
2. the implementation the model's config names (`attn_implementation`, MPT's
   `attn_config.attn_impl`);
3. the default of the framework the user names (`FRAMEWORK_DEFAULTS`, each with its source);
4. otherwise `DEFAULT_KERNEL`, Megatron-Core's, and the answer says so.

The planner's kernels (`suan.plan.layout.ATTENTION_KERNELS`) differ in what they execute:
`unfused` materialises the s² scores; `flash-full` is fused but computes the whole square;
`flash2` / `flash3` skip the masked half of causal attention and the blocks outside a sliding
window. The choice and its reason are printed by every `suan plan` command.
"""

from __future__ import annotations

from dataclasses import dataclass

from suan.errors import FieldProblem, SpecError
from suan.plan.layout import ATTENTION_KERNELS
from suan.plan.models import ModelSpec

DEFAULT_KERNEL = "flash3"
"""The kernel when nothing names one: Megatron-Core's default (see FRAMEWORK_DEFAULTS)."""

DEFAULT_REASON = ("nothing names a kernel (no --attention, no implementation in the config, no "
                  "--framework): Megatron-Core's default, Transformer Engine's fused attention; "
                  "pass --framework hf for Hugging Face's sdpa")

KERNEL_ALIASES: dict[str, str] = {
    "eager": "unfused", "torch": "unfused", "local": "unfused",
    "sdpa": "flash2", "flash_attention_2": "flash2", "flex_attention": "flash2",
    "flash": "flash2", "fa2": "flash2",
    "triton": "flash-full",
    "flash_attention_3": "flash3", "fa3": "flash3", "fused": "flash3", "cudnn": "flash3",
    "te": "flash3",
}
"""Implementation names → planner kernels. HuggingFace `attn_implementation`: `eager` (scores
in HBM), `sdpa` (PyTorch SDPA, whose flash backend is FlashAttention-2 for causal bf16 without
a padding mask), `flash_attention_2`, `flash_attention_3`, `flex_attention` (skips masked
blocks). MPT `attn_impl`: `torch` (unfused), `triton` (llm-foundry's Triton kernel, whole
square), `flash` (FlashAttention-2). Megatron-Core `--attention-backend`: `local` (unfused),
`flash`, `fused` (cuDNN via Transformer Engine)."""

FRAMEWORK_DEFAULTS: dict[str, tuple[str, str]] = {
    "hf": ("flash2", "Hugging Face Transformers loads with attn_implementation='sdpa' by default "
           "(PyTorch >= 2.1.1); PyTorch SDPA runs its FlashAttention-2 backend for causal bf16"),
    "megatron": ("flash3", "Megatron-Core's --attention-backend auto lets Transformer Engine pick "
                 "its fused kernel (cuDNN / FlashAttention-3 on Hopper)"),
    "nemo": ("flash3", "NeMo runs Megatron-Core with Transformer Engine: --attention-backend auto"),
    "megatron-bridge": ("flash3", "Megatron-Bridge runs Megatron-Core with Transformer Engine: "
                        "--attention-backend auto"),
    "torchtitan": ("flash2", "torchtitan calls F.scaled_dot_product_attention (use_flex_attn "
                   "defaults to False), whose flash backend is FlashAttention-2"),
    "llm-foundry": ("flash2", "llm-foundry's attn_config_defaults set attn_impl 'flash' "
                    "(FlashAttention-2)"),
    "pytorch": ("flash2", "F.scaled_dot_product_attention's flash backend is FlashAttention-2"),
    "mindspeed-llm": ("flash2", "MindSpeed-LLM's pretraining scripts pass --use-flash-attn "
                      "(torch_npu npu_fusion_attention, a fused causal kernel)"),
}
"""Framework → (kernel, why). Sources, in docs/planner.md: HF Transformers "Attention
backends" docs; Megatron-Core `transformer_config.py` (attention_backend = AttnBackend.auto) and
Transformer Engine's backend selection; torchtitan `models/llama3/model/args.py`; llm-foundry
`llmfoundry/models/utils/config_defaults.py`; MindSpeed-LLM `examples/mcore/*/pretrain_*.sh`."""

FRAMEWORK_ALIASES = {"huggingface": "hf", "transformers": "hf", "megatron-lm": "megatron",
                     "megatron-core": "megatron", "mcore": "megatron", "llmfoundry": "llm-foundry",
                     "composer": "llm-foundry", "fsdp": "pytorch", "mindspeed": "mindspeed-llm"}


@dataclass(frozen=True)
class AttentionChoice:
    """The kernel a plan uses, where the choice came from and why, and the config's window."""

    kernel: str
    source: str
    """"option", "config", "framework" or "default"."""
    reason: str
    sliding_window: int = 0
    sliding_layers: int = 0
    alibi: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"kernel": self.kernel, "source": self.source, "reason": self.reason,
                "sliding_window": self.sliding_window, "sliding_layers": self.sliding_layers,
                "alibi": self.alibi}

    def describe(self) -> str:
        """One line for text output."""
        extra = []
        if self.sliding_window:
            extra.append(f"sliding window {self.sliding_window} on {self.sliding_layers} layers")
        if self.alibi:
            extra.append("ALiBi")
        tail = f"; {', '.join(extra)}" if extra else ""
        return f"attention {self.kernel} ({self.source}: {self.reason}{tail})"


def kernel_of(name: str, field: str, source: str) -> str:
    """A planner kernel from a kernel or implementation name; SpecError naming `field`."""
    key = name.strip().lower()
    if key in ATTENTION_KERNELS:
        return key
    if key in KERNEL_ALIASES:
        return KERNEL_ALIASES[key]
    allowed = ", ".join([*ATTENTION_KERNELS, *KERNEL_ALIASES])
    raise SpecError(source, [FieldProblem(field, f"unknown attention kernel {name!r}", allowed)])


def framework_of(name: str) -> str:
    """The canonical framework name; SpecError naming --framework for an unknown one."""
    key = name.strip().lower()
    key = FRAMEWORK_ALIASES.get(key, key)
    if key not in FRAMEWORK_DEFAULTS:
        raise SpecError("--framework", [FieldProblem(
            "framework", f"unknown framework {name!r}", ", ".join(FRAMEWORK_DEFAULTS))])
    return key


def _decide(model: ModelSpec, option: str | None, framework: str | None) -> tuple[str, str, str]:
    if option:
        kernel = kernel_of(option, "attention", "--attention")
        return kernel, "option", f"--attention {option}"
    if model.attention_impl:
        kernel = kernel_of(model.attention_impl, model.attention_key, model.name)
        return kernel, "config", f"{model.attention_key} = {model.attention_impl!r} in the config"
    if framework:
        name = framework_of(framework)
        kernel, why = FRAMEWORK_DEFAULTS[name]
        return kernel, "framework", f"--framework {name}: {why}"
    return DEFAULT_KERNEL, "default", DEFAULT_REASON


def choose_attention(model: ModelSpec, option: str | None = None,
                     framework: str | None = None) -> AttentionChoice:
    """The attention kernel of a plan of `model` (precedence in the module docstring)."""
    if framework:
        framework_of(framework)
    kernel, source, reason = _decide(model, option, framework)
    return AttentionChoice(kernel, source, reason, model.sliding_window, model.sliding_layers,
                           model.alibi)
