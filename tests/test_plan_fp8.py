"""FP8 as it runs: the recipe is an input (option, then framework, then delayed), its casts cost
time by recipe, the BF16 parts are listed, mxfp8 needs Blackwell; torchtitan's tensor
parallelism is sequence-parallel without being told."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from suan.cli.main import cli
from suan.errors import SpecError
from suan.plan.estimate import estimate
from suan.plan.fp8 import BF16_PARTS, CAST_BYTES, FRAMEWORK_RECIPES, RECIPES, choose_recipe
from suan.plan.framework_layout import sequence_parallel
from suan.plan.hardware import hardware_for
from suan.plan.layout import Layout, Workload
from suan.plan.models import load_model

RUNNER = CliRunner()
QWEN = str(Path(__file__).parent / "fixtures" / "plan-configs" / "qwen2.5-0.5b" / "config.json")
BASE = ["plan", "estimate", "--accelerator", "H100", "--devices", "8", "--global-batch", "16",
        "--seq", "4096", "--zero", "3", "--json"]


def run(*args: str) -> tuple[int, dict | str]:
    done = RUNNER.invoke(cli, list(args))
    if done.exit_code:
        return done.exit_code, done.output
    return 0, json.loads(done.stdout)


def tokens_per_s(model: str, precision: str, recipe: str = "") -> float:
    layout = Layout(tp=1, pp=1, dp=8, zero=3)
    workload = Workload(seq=4096, global_batch=16, precision=precision, attention="flash2",
                        fp8_recipe=recipe)
    return estimate(load_model(model), hardware_for("H100"), layout, workload).tokens_per_s


def test_the_recipe_comes_from_the_option_then_the_framework_then_the_default():
    assert choose_recipe("fp8", "blockwise", "torchtitan", "H100-SXM-80GB").source == "option"
    for framework, (recipe, why) in FRAMEWORK_RECIPES.items():
        choice = choose_recipe("fp8", None, framework, "H100-SXM-80GB")
        assert (choice.recipe, choice.source) == (recipe, "framework")
        assert why in choice.reason
    default = choose_recipe("fp8", None, None, "H100-SXM-80GB")
    assert (default.recipe, default.source) == ("delayed", "default")
    assert choose_recipe("bf16", None, "torchtitan", "H100-SXM-80GB").recipe == ""


def test_bad_recipes_are_refused_naming_the_option_and_what_is_allowed():
    with pytest.raises(SpecError) as unknown:
        choose_recipe("fp8", "fp4-magic", None, "H100-SXM-80GB")
    assert unknown.value.problems[0].path == "fp8-recipe"
    assert all(name in unknown.value.problems[0].allowed for name in RECIPES)
    with pytest.raises(SpecError, match="needs --precision fp8"):
        choose_recipe("bf16", "current", None, "H100-SXM-80GB")
    with pytest.raises(SpecError, match="mxfp8 needs"):
        choose_recipe("fp8", "mxfp8", None, "H100-SXM-80GB")
    assert choose_recipe("fp8", "mxfp8", None, "GB200-NVL72").recipe == "mxfp8"
    refused = RUNNER.invoke(cli, [*BASE, "--model", "llama3-8b", "--precision", "fp8",
                                  "--fp8-recipe", "mxfp8"])
    assert isinstance(refused.exception, SpecError)
    assert "--fp8-recipe" in str(refused.exception)


def test_current_scaling_costs_an_extra_pass_and_small_models_gain_least():
    assert CAST_BYTES["current"] > CAST_BYTES["delayed"]
    delayed = tokens_per_s("llama3-8b", "fp8", "delayed")
    current = tokens_per_s("llama3-8b", "fp8", "current")
    assert current < delayed
    gains = {model: tokens_per_s(model, "fp8", "delayed") / tokens_per_s(model, "bf16")
             for model in (QWEN, "llama3-8b", "llama3-70b")}
    assert 1.0 < gains[QWEN] < gains["llama3-8b"] < gains["llama3-70b"] < 2.0


def test_the_cli_names_the_recipe_why_and_the_bf16_parts():
    code, data = run(*BASE, "--model", "llama3-8b", "--precision", "fp8", "--framework",
                     "torchtitan")
    assert code == 0 and isinstance(data, dict)
    assert data["fp8"]["recipe"] == "current" and data["fp8"]["source"] == "framework"
    assert data["fp8"]["bf16_parts"] == list(BF16_PARTS)
    text = RUNNER.invoke(cli, [*BASE[:-1], "--model", "llama3-8b", "--precision", "fp8"])
    assert text.exit_code == 0
    assert "fp8 recipe delayed (default" in text.stdout
    assert "output projection and loss" in text.stdout
    code, bf16 = run(*BASE, "--model", "llama3-8b")
    assert code == 0 and isinstance(bf16, dict) and bf16["fp8"]["recipe"] is None


def test_search_and_size_take_the_recipe():
    search = ["plan", "search", "--model", "llama3-8b", "--accelerator", "H100", "--devices",
              "16", "--precision", "fp8", "--top", "1", "--json"]
    found = {}
    for recipe in ("current", "delayed"):
        code, found[recipe] = run(*search, "--fp8-recipe", recipe)
        assert code == 0 and isinstance(found[recipe], dict)
        assert found[recipe]["fp8"]["recipe"] == recipe
    # the recipe reaches the ranked plans: current scaling's extra pass makes the best slower
    best = {recipe: result["plans"][0]["tokens_per_s"] for recipe, result in found.items()}
    assert best["current"] < best["delayed"]
    size = ["plan", "size", "--model", "llama3-8b", "--accelerator", "H100", "--tokens", "10B",
            "--days", "30", "--precision", "fp8", "--json"]
    code, nemo = run(*size, "--framework", "nemo")
    assert code == 0 and isinstance(nemo, dict) and nemo["fp8"]["recipe"] == "delayed"
    code, titan = run(*size, "--framework", "torchtitan", "--attention", "flash3")
    assert code == 0 and isinstance(titan, dict) and titan["fp8"]["recipe"] == "current"
    code, told = run(*size, "--framework", "torchtitan", "--attention", "flash3",
                     "--fp8-recipe", "delayed")
    assert code == 0 and isinstance(told, dict)
    assert told["plan"]["layout"] == titan["plan"]["layout"]
    assert titan["plan"]["tokens_per_s"] < told["plan"]["tokens_per_s"]


def test_torchtitan_tensor_parallelism_is_sequence_parallel_unless_told_otherwise():
    assert sequence_parallel(None, "torchtitan", 8)[0] is True
    assert sequence_parallel(None, "torchtitan", 1) == (False, "")
    assert sequence_parallel(False, "torchtitan", 8) == (False, "")
    assert sequence_parallel(None, "megatron", 8) == (False, "")
    args = [*BASE[:2], "--model", "llama3-70b", "--accelerator", "H100", "--devices", "64",
            "--tp", "8", "--global-batch", "64", "--seq", "8192", "--zero", "3", "--json"]
    code, titan = run(*args, "--framework", "torchtitan")
    assert code == 0 and isinstance(titan, dict)
    assert titan["layout"]["sequence_parallel"] is True
    assert any("SequenceParallel" in note for note in titan["notes"])
    code, told = run(*args, "--framework", "torchtitan", "--no-sequence-parallel")
    assert code == 0 and isinstance(told, dict) and told["layout"]["sequence_parallel"] is False
    assert told["memory_gib"]["activations"] > titan["memory_gib"]["activations"]


def test_fp8_gemms_run_at_their_own_measured_fraction_of_the_fp8_peak():
    from suan.plan.hardware import FP8_GEMM_FRACTIONS

    h100, a800 = hardware_for("H100"), hardware_for("A800")
    assert h100.gemm_fraction_for("fp8") == FP8_GEMM_FRACTIONS["H100"] < h100.gemm_fraction
    assert h100.gemm_fraction_for("bf16") == h100.gemm_fraction
    assert a800.gemm_fraction_for("fp8") == a800.gemm_fraction  # no measurement: BF16's
    assert hardware_for("GB200").gemm_fraction < h100.gemm_fraction  # its MAMF is lower


def test_an_unknown_recipe_in_the_workload_is_a_problem_not_a_silent_delayed():
    from suan.plan.layout import layout_problems

    llama = load_model("llama3-8b")
    layout = Layout(dp=8, zero=3)
    bogus = Workload(seq=4096, global_batch=16, precision="fp8", fp8_recipe="tensorwise")
    assert [p.path for p in layout_problems(llama, layout, bogus)] == ["fp8_recipe"]
    with pytest.raises(SpecError, match="fp8_recipe"):
        estimate(llama, hardware_for("H100"), layout, bogus)
    for recipe in ("", *RECIPES[:3]):
        fine = Workload(seq=4096, global_batch=16, precision="fp8", fp8_recipe=recipe)
        assert layout_problems(llama, layout, fine) == []


def test_a_recipe_on_a_bf16_workload_is_a_layout_problem_and_precision_ignores_case():
    from suan.plan.layout import layout_problems

    problems = layout_problems(load_model("llama3-8b"), Layout(dp=8),
                               Workload(seq=4096, global_batch=8, fp8_recipe="current"))
    assert [problem.path for problem in problems] == ["fp8_recipe"]
    code, data = run(*BASE, "--model", "llama3-8b", "--precision", " FP8 ")
    assert code == 0 and isinstance(data, dict) and data["precision"] == "fp8"


def test_compare_ranks_types_in_fp8_and_says_which_cannot_run_it():
    done = RUNNER.invoke(cli, ["plan", "compare", "--model", "llama3-70b", "--devices", "64",
                               "--accelerators", "H100,A100-80GB,GB200", "--precision", "fp8",
                               "--json"])
    assert done.exit_code == 0, done.output
    entries = {entry["accelerator"]: entry for entry in json.loads(done.stdout)}
    assert entries["H100"]["plan"]["precision"] == "fp8"
    assert entries["A100-80GB"]["plan"] is None
    assert "no FP8" in entries["A100-80GB"]["reason"]
    mx = RUNNER.invoke(cli, ["plan", "compare", "--model", "llama3-70b", "--devices", "64",
                             "--accelerators", "H100,GB200", "--precision", "fp8",
                             "--fp8-recipe", "mxfp8", "--json"])
    mx_entries = {entry["accelerator"]: entry for entry in json.loads(mx.stdout)}
    assert mx_entries["GB200"]["plan"] and "mxfp8 needs" in mx_entries["H100"]["reason"]
    refused = RUNNER.invoke(cli, ["plan", "compare", "--model", "llama3-70b", "--devices", "64",
                                  "--precision", "int4"])
    assert isinstance(refused.exception, SpecError) and "--precision" in str(refused.exception)
