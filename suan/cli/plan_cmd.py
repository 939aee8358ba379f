"""`suan plan ...`: predict training speed and memory, search layouts, compare and size clusters.

    suan plan estimate --model llama3-70b --accelerator H100 --devices 512 --tp 8 --pp 4 ...
    suan plan search   --model llama3-70b --accelerator H100 --devices 512 --top 5
    suan plan compare  --model llama3-70b --devices 512 --accelerators H100,H800,H20,910B
    suan plan size     --model llama3-70b --accelerator H100 --tokens 1T --days 30

Bad input raises SpecError (printed by the CLI wrapper without a traceback).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import typer

from suan.cli.files import text_file_or_name
from suan.errors import FieldProblem, SpecError
from suan.plan.advice import choose_layout, plan_search, size_cluster
from suan.plan.attention import AttentionChoice, choose_attention, framework_of
from suan.plan.estimate import Estimate, estimate
from suan.plan.fp8 import RECIPES, RecipeChoice, checked_option, choose_recipe
from suan.plan.framework_layout import Said, adapt
from suan.plan.hardware import hardware_for
from suan.plan.layout import PRECISIONS, Layout, Workload
from suan.plan.models import load_model

plan_app = typer.Typer(help="Predict training speed and memory; find the best parallel layout.",
                       no_args_is_help=True)

DEFAULT_COMPARE = "H100,H800,H20,Ascend-910B"
_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


def register(app: typer.Typer) -> None:
    """Add the `plan` command group to `app`."""
    app.add_typer(plan_app, name="plan")


def parse_tokens(text: str) -> float:
    """'1T', '300B', '2.5e12' → a token count. Raises SpecError naming --tokens."""
    match = re.fullmatch(r"\s*([\d.]+(?:e\d+)?)\s*([KMBGTP]?)\s*", text, re.IGNORECASE)
    if not match:
        raise SpecError("--tokens", [FieldProblem("tokens", f"cannot read {text!r}",
                                                  "a number with an optional K/M/B/T suffix")])
    return float(match.group(1)) * _SUFFIXES[match.group(2).upper()]


def _derive_dp(devices: int, tp: int, pp: int, cp: int, dp: int | None) -> int:
    """--dp, or devices/(tp·pp·cp) rounded down (the layout check then names what is off)."""
    if dp is not None:
        return dp
    return max(1, devices // max(1, tp * pp * cp))


ATTENTION_HELP = ("Attention kernel: unfused | flash-full | flash2 | flash3, or an "
                  "implementation name (sdpa, eager, flash_attention_2, triton, ...). Default: "
                  "the config's, else the --framework's.")
FRAMEWORK_HELP = ("Training framework whose defaults apply where the command and the config "
                  "are silent (attention kernel, FP8 recipe, sequence parallelism, TP/DP "
                  "overlap, per-op checkpointing, eager loss; docs/planner.md): hf | megatron "
                  "| nemo | megatron-bridge | torchtitan | llm-foundry | pytorch | "
                  "mindspeed-llm.")
RECIPE_HELP = (f"FP8 scaling recipe with --precision fp8: {' | '.join(RECIPES)}. Default: the "
               "--framework's, else delayed.")


def _precision(text: str) -> str:
    """--precision as the planner spells it (case and spaces ignored; the layout check names
    an unknown one)."""
    return text.strip().lower()


def _recipe(precision: str, option: str | None, framework: str | None,
            accelerator: str) -> RecipeChoice:
    """The FP8 recipe of this command's plans and why (suan.plan.fp8)."""
    named = framework_of(framework) if framework else None
    return choose_recipe(precision, option, named, hardware_for(accelerator).name)


def _choices(attention: AttentionChoice, recipe: RecipeChoice) -> str:
    """The attention and FP8 recipe lines of text output."""
    return "\n".join(line for line in (attention.describe(), recipe.describe()) if line)


def _attention(model: str, attention: str | None, framework: str | None) -> AttentionChoice:
    """The attention kernel of this command's plans and why (suan.plan.attention)."""
    return choose_attention(load_model(model), attention, framework)


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def _summary(plan: Estimate) -> str:
    mem = plan.memory.gib()
    parts = ", ".join(f"{key} {value:.1f}" for key, value in mem.items())
    return (f"{plan.model} on {plan.layout.devices} × {plan.hardware}: {plan.layout.describe()}\n"
            f"  step {plan.step_time_s:.2f} s, {plan.tokens_per_s:,.0f} tokens/s, "
            f"{plan.tflops_per_device:.0f} model TFLOP/s/device, MFU {100 * plan.mfu:.1f}%, "
            f"HFU {100 * plan.hfu:.1f}%{_disputed(plan)}\n"
            f"  memory {plan.memory_gib:.1f} of {plan.memory_capacity_gib:.0f} GiB per device "
            f"({parts}), fits: {'yes' if plan.fits else 'NO'}"
            + "".join(f"\n  warning: {text}" for text in plan.warnings)
            + "".join(f"\n  note: {text}" for text in plan.notes))


def _disputed(plan: Estimate) -> str:
    """A marker after MFU/HFU when the accelerator's peak is disputed (see the warning)."""
    return " (disputed peak)" if plan.peak_caveat else ""


@plan_app.command("estimate")
def estimate_cmd(
    model: str = typer.Option(..., help="Built-in model name or a config.json path.",
                              callback=text_file_or_name),
    accelerator: str = typer.Option(..., help="Accelerator type or alias from the catalog."),
    devices: int = typer.Option(..., help="Total devices."),
    tp: int = typer.Option(1, help="Tensor-parallel degree."),
    pp: int = typer.Option(1, help="Pipeline-parallel degree."),
    dp: int | None = typer.Option(None, help="Data-parallel degree (default devices/(tp·pp·cp))."),
    cp: int = typer.Option(1, help="Context-parallel degree."),
    cp_comm: str = typer.Option(
        "p2p", help="Context-parallel exchange: p2p (ring attention) | all_gather | a2a "
        "(Megatron's --cp-comm-type)."),
    ep: int = typer.Option(1, help="Expert-parallel degree (MoE)."),
    vpp: int = typer.Option(1, help="Virtual pipeline stages per device (interleaved 1F1B)."),
    first_stage_layers: int | None = typer.Option(
        None, help="Layers on the first pipeline stage (Megatron "
        "--decoder-first-pipeline-num-layers); default: the split of docs/planner.md."),
    last_stage_layers: int | None = typer.Option(
        None, help="Layers on the last pipeline stage (--decoder-last-pipeline-num-layers)."),
    micro_batch: int = typer.Option(1, help="Micro-batch size (sequences)."),
    global_batch: int = typer.Option(..., help="Global batch (sequences)."),
    seq: int = typer.Option(..., help="Sequence length (tokens)."),
    recompute: str = typer.Option(
        "selective", help="none | selective | full | op (per-op checkpointing; torchtitan's "
        "selective)."),
    sequence_parallel: bool | None = typer.Option(
        None, help="Sequence parallelism (default: off; on at tp > 1 for --framework "
        "torchtitan / megatron-bridge)."),
    zero: int = typer.Option(1, help="ZeRO stage 0-3 (3 = FSDP full shard)."),
    tp_comm_overlap: bool | None = typer.Option(
        None, help="Overlap tensor-parallel collectives with the GEMMs (default: on for "
        "--framework megatron-bridge at tp > 1)."),
    dp_comm_overlap: bool | None = typer.Option(
        None, help="Data-parallel collectives overlapped with compute by design (default: on "
        "for --framework megatron-bridge)."),
    precision: str = typer.Option("bf16", help="bf16 | fp8."),
    inter_node_gbs: float | None = typer.Option(None, help="Inter-node GB/s per device."),
    attention: str | None = typer.Option(None, help=ATTENTION_HELP),
    framework: str | None = typer.Option(None, help=FRAMEWORK_HELP),
    fp8_recipe: str | None = typer.Option(None, help=RECIPE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predict step time, throughput, MFU/HFU and memory of one layout."""
    spec = load_model(model)
    choice = choose_attention(spec, attention, framework)
    hardware = hardware_for(accelerator, inter_node_gbs)
    precision = _precision(precision)
    named = framework_of(framework) if framework else None
    recipe = choose_recipe(precision, fp8_recipe, named, hardware.name)
    layout = Layout(tp=tp, pp=pp, dp=_derive_dp(devices, tp, pp, cp, dp), cp=cp, ep=ep,
                    vpp=vpp, micro_batch=micro_batch, zero=zero, recompute=recompute,
                    sequence_parallel=bool(sequence_parallel),
                    first_stage_layers=first_stage_layers,
                    last_stage_layers=last_stage_layers, cp_comm=cp_comm,
                    tp_overlap=bool(tp_comm_overlap), dp_overlap=bool(dp_comm_overlap))
    workload = Workload(seq=seq, global_batch=global_batch, precision=precision,
                        attention=choice.kernel, fp8_recipe=recipe.recipe)
    said = Said(sequence_parallel, tp_comm_overlap, dp_comm_overlap)
    layout, workload, framework_notes = adapt(layout, workload, named, said)
    plan = estimate(spec, hardware, layout, workload, devices=devices)
    if framework_notes:
        plan = replace(plan, notes=(*plan.notes, *framework_notes))
    _emit({**plan.as_dict(), "attention": choice.as_dict(), "fp8": recipe.as_dict()}, as_json,
          _summary(plan) + "\n  " + _choices(choice, recipe).replace("\n", "\n  "))
    if as_json:
        for text in plan.warnings:
            typer.echo(f"warning: {text}", err=True)


@plan_app.command("search")
def search_cmd(
    model: str = typer.Option(..., help="Built-in model name or a config.json path.",
                              callback=text_file_or_name),
    accelerator: str = typer.Option(..., help="Accelerator type or alias from the catalog."),
    devices: int = typer.Option(..., help="Total devices."),
    global_batch: int | None = typer.Option(None, help="Global batch (default ~4M tokens)."),
    seq: int = typer.Option(4096, help="Sequence length (tokens)."),
    top: int = typer.Option(5, help="How many plans to show."),
    precision: str = typer.Option("bf16", help="bf16 | fp8."),
    inter_node_gbs: float | None = typer.Option(None, help="Inter-node GB/s per device."),
    attention: str | None = typer.Option(None, help=ATTENTION_HELP),
    framework: str | None = typer.Option(None, help=FRAMEWORK_HELP),
    fp8_recipe: str | None = typer.Option(None, help=RECIPE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rank the valid layouts by throughput and count why the others were rejected."""
    choice = _attention(model, attention, framework)
    precision = _precision(precision)
    recipe = _recipe(precision, fp8_recipe, framework, accelerator)
    result = plan_search(model, accelerator, devices, seq=seq, global_batch=global_batch,
                         top=top, precision=precision, inter_node_gbs=inter_node_gbs,
                         attention=choice.kernel, framework=framework,
                         fp8_recipe=recipe.recipe)
    lines = [f"{result.feasible} of {result.considered} layouts fit "
             f"({result.seconds:.2f} s); rejected: {dict(result.rejected.most_common())}",
             _choices(choice, recipe)]
    lines += [f"#{rank} " + _summary(plan) for rank, plan in enumerate(result.plans, 1)]
    _emit({**result.as_dict(), "attention": choice.as_dict(), "fp8": recipe.as_dict()},
          as_json, "\n".join(lines))


@plan_app.command("compare")
def compare_cmd(
    model: str = typer.Option(..., help="Built-in model name or a config.json path.",
                              callback=text_file_or_name),
    devices: int = typer.Option(..., help="Devices of each type."),
    accelerators: str = typer.Option(DEFAULT_COMPARE, help="Comma-separated types."),
    global_batch: int | None = typer.Option(None, help="Global batch (default ~4M tokens)."),
    seq: int = typer.Option(4096, help="Sequence length (tokens)."),
    attention: str | None = typer.Option(None, help=ATTENTION_HELP),
    framework: str | None = typer.Option(None, help=FRAMEWORK_HELP),
    precision: str = typer.Option("bf16", help="bf16 | fp8 (types without FP8 are listed "
                                  "with the reason)."),
    fp8_recipe: str | None = typer.Option(None, help=RECIPE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rank accelerator types by the throughput of their best plan."""
    names = [name.strip() for name in accelerators.split(",") if name.strip()]
    choice = _attention(model, attention, framework)
    precision = _precision(precision)
    _check_precision(precision, fp8_recipe)
    found = {name: _best_of_type(model, name, devices, seq, global_batch, choice.kernel,
                                 framework, precision, fp8_recipe) for name in names}
    ranking = sorted(found.items(), key=lambda item: _speed(item[1][0]), reverse=True)
    top = _speed(ranking[0][1][0]) if ranking else 0.0
    data = [{**_compare_entry(name, plan, why), "attention": choice.as_dict()}
            for name, (plan, why) in ranking]
    lines = [_compare_line(name, plan, why, top) for name, (plan, why) in ranking]
    _emit(data, as_json, "\n".join([*lines, choice.describe()]))


def _check_precision(precision: str, fp8_recipe: str | None) -> None:
    """SpecError naming the option when the precision or the recipe is wrong whatever the
    type (what only some types cannot run is reported per type)."""
    if precision not in PRECISIONS:
        raise SpecError("--precision", [FieldProblem(
            "precision", f"unknown precision {precision!r}", ", ".join(PRECISIONS))])
    checked_option(precision, fp8_recipe)


def _speed(plan: Estimate | None) -> float:
    return plan.tokens_per_s if plan else 0.0


def _best_of_type(model: str, name: str, devices: int, seq: int, global_batch: int | None,
                  kernel: str, framework: str | None, precision: str,
                  fp8_recipe: str | None) -> tuple[Estimate | None, str]:
    """One type's best plan, or None and why: nothing fits, or the type cannot run the
    precision or recipe (a SpecError about the type, not the user's other input)."""
    try:
        recipe = _recipe(precision, fp8_recipe, framework, name)
        plan = choose_layout(model, name, devices, seq, global_batch, kernel, framework,
                             precision, recipe.recipe)
    except SpecError as refused:
        if not any(problem.path in ("precision", "fp8-recipe") for problem in refused.problems):
            raise
        return None, "; ".join(problem.message for problem in refused.problems)
    return plan, "" if plan else "nothing fits"


def _compare_entry(name: str, plan: Estimate | None, why: str = "") -> dict[str, Any]:
    """One type's best plan as JSON: speed, layout, utilisation and memory (None: no plan,
    with `reason`)."""
    if plan is None:
        return {"accelerator": name, "tokens_per_s": 0.0, "plan": None,
                "reason": why or "nothing fits"}
    return {"accelerator": name, "tokens_per_s": plan.tokens_per_s, "plan": plan.as_dict()}


def _compare_line(name: str, plan: Estimate | None, why: str, top: float) -> str:
    """One type's best plan as text: speed, share of the fastest, layout, MFU, memory."""
    if plan is None:
        return f"{name:12s} {0:10,.0f} tokens/s  {why or 'nothing fits'}"
    share = plan.tokens_per_s / top if top else 0.0
    return (f"{name:12s} {plan.tokens_per_s:10,.0f} tokens/s  {share:4.2f}×  "
            f"{plan.layout.describe():32s} MFU {100 * plan.mfu:4.1f}%{_disputed(plan)}  "
            f"{plan.memory_gib:5.1f}/{plan.memory_capacity_gib:.0f} GiB")


@plan_app.command("size")
def size_cmd(
    model: str = typer.Option(..., help="Built-in model name or a config.json path.",
                              callback=text_file_or_name),
    accelerator: str = typer.Option(..., help="Accelerator type or alias from the catalog."),
    tokens: str = typer.Option(..., help="Training tokens, e.g. 1T or 300B."),
    days: float = typer.Option(..., help="Deadline in days."),
    global_batch: int | None = typer.Option(None, help="Global batch (default ~4M tokens)."),
    seq: int = typer.Option(4096, help="Sequence length (tokens)."),
    precision: str = typer.Option("bf16", help="bf16 | fp8."),
    attention: str | None = typer.Option(None, help=ATTENTION_HELP),
    framework: str | None = typer.Option(None, help=FRAMEWORK_HELP),
    fp8_recipe: str | None = typer.Option(None, help=RECIPE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """How many devices of one type train N tokens within D days."""
    if days <= 0:
        raise SpecError("--days", [FieldProblem("days", f"must be positive, got {days}", "> 0")])
    choice = _attention(model, attention, framework)
    precision = _precision(precision)
    recipe = _recipe(precision, fp8_recipe, framework, accelerator)
    sizing = size_cluster(model, accelerator, parse_tokens(tokens), days, seq=seq,
                          global_batch=global_batch, precision=precision,
                          attention=choice.kernel, framework=framework,
                          fp8_recipe=recipe.recipe)
    text = f"{sizing.devices} devices, {sizing.days:.1f} days: {sizing.advice()}"
    if sizing.plan:
        text += "\n" + _summary(sizing.plan)
    _emit({**sizing.as_dict(), "attention": choice.as_dict(), "fp8": recipe.as_dict()},
          as_json, text + "\n" + _choices(choice, recipe))
