"""FP8 training as it runs: which GEMMs a recipe casts, what the casts cost, what stays BF16.

An FP8 run is not a BF16 run at twice the speed. Only the transformer layers' linear layers
(QKV, attention output, MLP up/gate and down, and the routed experts' GEMMs) run on the FP8
tensor cores; every operand of those GEMMs is first cast to FP8, in both layouts Hopper's
TN-only FP8 GEMMs need, and the scaling recipe decides how many HBM passes that cast takes.
Everything else stays in BF16 (`BF16_PARTS`). Small models, whose time goes to attention,
element-wise kernels and casts, gain little.

Recipes (`RECIPES`, `--fp8-recipe`):

- `delayed`: per-tensor scales from an amax history of earlier steps; the cast, the transpose
  and the amax are one fused kernel (Transformer Engine's `DelayedScaling`, its default).
- `current`: per-tensor scales from the tensor being cast, so its amax is read before the cast
  (an extra pass over the BF16 input): Transformer Engine's `Float8CurrentScaling`,
  Megatron-Bridge's "FP8-CS", torchao's tensorwise dynamic scaling (torchtitan's Float8).
- `blockwise`: a scale per 1×128 activation tile and 128×128 weight block (DeepSeek-V3's
  recipe, Transformer Engine's `Float8BlockScaling`), computed inside the cast kernel.
- `mxfp8`: OCP microscaling, a power-of-two scale per 32 elements, applied by the tensor cores
  of Blackwell parts only (`MX_TYPES`).

`choose_recipe` takes `--fp8-recipe`, else the named framework's default (`FRAMEWORK_RECIPES`),
else `delayed`, and says why, like the attention kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from suan.errors import FieldProblem, SpecError

RECIPES = ("delayed", "current", "blockwise", "mxfp8")

CAST_BYTES: dict[str, float] = {
    "delayed": 4.0,
    "current": 6.0,
    "blockwise": 4.0 + 2 * 4 / 128,
    "mxfp8": 4.0 + 2 * 1 / 32,
}
"""HBM bytes per GEMM-operand element to cast it to FP8. All recipes read the BF16 value (2)
and write an FP8 copy and its FP8 transpose (1 + 1). `current` reads the BF16 tensor once more
for its amax before the cast (+2). `blockwise` adds an fp32 scale per 128 elements per layout,
`mxfp8` an 8-bit scale per 32 elements per layout."""

MX_TYPES = frozenset({"GB200-NVL72"})
"""Catalog types whose tensor cores apply MX block scales (NVIDIA Blackwell)."""

BF16_PARTS = (
    "embedding lookup",
    "output projection and loss",
    "attention core (QK^T, softmax, PV)",
    "normalisations, activations and residual adds",
    "MoE router",
)
"""What an FP8 recipe leaves in BF16: Transformer Engine and torchao swap only the linear
layers inside the transformer blocks (`fp8_autocast` around the decoder; torchao's
`convert_to_float8_training` skips the output projection by default)."""

FRAMEWORK_RECIPES: dict[str, tuple[str, str]] = {
    "torchtitan": ("current", "torchtitan's Float8 linears use torchao's tensorwise dynamic "
                   "(current) scaling"),
    "megatron-bridge": ("current", "Megatron-Bridge's FP8 recipes run current scaling (FP8-CS)"),
    "nemo": ("delayed", "NeMo's fp8 recipe defaults to Transformer Engine's delayed scaling"),
    "megatron": ("delayed", "Megatron-Core's --fp8-recipe defaults to delayed"),
    "llm-foundry": ("delayed", "llm-foundry's FP8 runs Transformer Engine's DelayedScaling"),
    "hf": ("delayed", "Hugging Face Accelerate's FP8 (Transformer Engine) defaults to delayed"),
}
"""Framework → (recipe, why): the default scaling recipe of each framework's FP8 path."""


@dataclass(frozen=True)
class RecipeChoice:
    """The FP8 recipe a plan uses, where the choice came from, and what stays in BF16."""

    recipe: str
    source: str
    """"option", "framework" or "default" ("" when the run is BF16)."""
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"recipe": self.recipe or None, "source": self.source or None,
                "reason": self.reason, "bf16_parts": list(BF16_PARTS) if self.recipe else []}

    def describe(self) -> str:
        """One line for text output ('' for a BF16 run)."""
        if not self.recipe:
            return ""
        return (f"fp8 recipe {self.recipe} ({self.source}: {self.reason}); kept in BF16: "
                f"{', '.join(BF16_PARTS)}")


BF16_RUN = RecipeChoice("", "", "the run is BF16")


def recipe_of(name: str) -> str:
    """A recipe name checked against RECIPES; SpecError naming --fp8-recipe."""
    key = name.strip().lower()
    if key not in RECIPES:
        raise SpecError("--fp8-recipe", [FieldProblem(
            "fp8-recipe", f"unknown FP8 recipe {name!r}", ", ".join(RECIPES))])
    return key


def checked_option(precision: str, option: str | None) -> str:
    """`--fp8-recipe` checked whatever the accelerator: a known recipe, and only with FP8 (on a
    BF16 run it would be silently ignored); "" when not given. SpecError naming the option."""
    if not option:
        return ""
    recipe = recipe_of(option)
    if precision != "fp8":
        raise SpecError("--fp8-recipe", [FieldProblem(
            "fp8-recipe", "an FP8 recipe needs --precision fp8", "--precision fp8")])
    return recipe


def choose_recipe(precision: str, option: str | None, framework: str | None,
                  accelerator: str) -> RecipeChoice:
    """The FP8 recipe of a plan: `option` (checked_option), else `framework`'s default, else
    delayed; a BF16 run has none. mxfp8 needs an `MX_TYPES` accelerator."""
    named = checked_option(precision, option)
    if precision != "fp8":
        return BF16_RUN
    if named:
        choice = RecipeChoice(named, "option", f"--fp8-recipe {option}")
    elif framework in FRAMEWORK_RECIPES:
        recipe, why = FRAMEWORK_RECIPES[framework]
        choice = RecipeChoice(recipe, "framework", f"--framework {framework}: {why}")
    else:
        choice = RecipeChoice("delayed", "default",
                              "Transformer Engine's default recipe; name --fp8-recipe or "
                              "--framework to change it")
    if choice.recipe == "mxfp8" and accelerator not in MX_TYPES:
        raise SpecError("--fp8-recipe", [FieldProblem(
            "fp8-recipe", f"mxfp8 needs tensor cores that apply MX block scales; "
            f"{accelerator} has none", f"delayed, current, blockwise, or an accelerator of "
            f"{', '.join(sorted(MX_TYPES))}")])
    return choice


def cast_bytes(recipe: str) -> float:
    """HBM bytes per element cast to FP8 under `recipe` (CAST_BYTES; delayed when unnamed)."""
    return CAST_BYTES.get(recipe or "delayed", CAST_BYTES["delayed"])
