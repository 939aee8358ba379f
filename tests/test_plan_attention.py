"""Attention as an input: --attention, then the config's implementation, then the framework's
default; the choice and its reason reach every `suan plan` command; sliding-window FLOPs."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from suan.cli.main import cli
from suan.errors import SpecError
from suan.plan.attention import DEFAULT_KERNEL, FRAMEWORK_DEFAULTS, choose_attention
from suan.plan.estimate import estimate
from suan.plan.flops import attention_core_flops, causal_span
from suan.plan.hardware import hardware_for
from suan.plan.layout import Layout, Workload
from suan.plan.models import load_model

RUNNER = CliRunner()
CONFIGS = Path(__file__).parent / "fixtures" / "plan-configs"
MPT = str(CONFIGS / "mpt-7b" / "config.json")
MISTRAL = str(CONFIGS / "mistral-7b-v0.1" / "config.json")


def test_option_beats_config_and_config_beats_framework():
    mpt = load_model(MPT)
    assert choose_attention(mpt, "flash2", "megatron").kernel == "flash2"
    from_config = choose_attention(mpt, None, "megatron")
    assert (from_config.kernel, from_config.source) == ("unfused", "config")
    assert "attn_config.attn_impl" in from_config.reason


def test_framework_default_when_the_config_names_none():
    llama = load_model("llama3-8b")
    for framework, (kernel, _) in FRAMEWORK_DEFAULTS.items():
        choice = choose_attention(llama, None, framework)
        assert (choice.kernel, choice.source) == (kernel, "framework")
    assert choose_attention(llama, None, "HuggingFace").kernel == "flash2"
    default = choose_attention(llama)
    assert (default.kernel, default.source) == (DEFAULT_KERNEL, "default")


def test_implementation_names_map_to_kernels_and_unknown_names_are_errors():
    llama = load_model("llama3-8b")
    assert choose_attention(llama, "sdpa").kernel == "flash2"
    assert choose_attention(llama, "eager").kernel == "unfused"
    assert choose_attention(llama, "triton").kernel == "flash-full"
    with pytest.raises(SpecError, match="attention"):
        choose_attention(llama, "magic")
    with pytest.raises(SpecError, match="framework"):
        choose_attention(llama, None, "jax-on-a-toaster")


def test_config_attn_implementation_key_is_read():
    spec = load_model({"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                       "num_attention_heads": 4, "vocab_size": 100,
                       "attn_implementation": "flash_attention_2"})
    choice = choose_attention(spec, None, "megatron")
    assert (choice.kernel, choice.source) == ("flash2", "config")


@settings(max_examples=200, derandomize=True, deadline=None)
@given(seq=st.integers(1, 1 << 20), window=st.integers(1, 1 << 18))
def test_windowed_span_never_exceeds_the_window_or_the_causal_span(seq, window):
    span = causal_span(seq, window)
    assert span <= causal_span(seq) + 1e-9
    assert span <= window + 1e-9
    if seq <= window:
        assert span == causal_span(seq)


def test_sliding_window_cuts_attention_flops_beyond_the_window_only():
    mistral = load_model(MISTRAL)
    full = replace(mistral, sliding_window=0, sliding_layers=0)
    assert attention_core_flops(mistral, 4096) == attention_core_flops(full, 4096)
    # s = 32k, w = 4k: causal span w − w²/(2s) = 3840 of 16384 keys.
    ratio = attention_core_flops(mistral, 32768) / attention_core_flops(full, 32768)
    assert ratio == pytest.approx((4096 - 4096**2 / (2 * 32768)) / (32768 / 2))
    half = replace(mistral, sliding_layers=16)
    assert attention_core_flops(half, 32768) == pytest.approx(
        (attention_core_flops(mistral, 32768) + attention_core_flops(full, 32768)) / 2)


def test_only_block_skipping_kernels_run_faster_with_a_window():
    mistral = load_model(MISTRAL)
    full = replace(mistral, sliding_window=0, sliding_layers=0)
    hardware, layout = hardware_for("H100"), Layout(tp=8, dp=1, zero=0)
    for kernel, faster in (("flash2", True), ("unfused", False)):
        workload = Workload(seq=32768, global_batch=8, attention=kernel)
        windowed = estimate(mistral, hardware, layout, workload).step_time_s
        plain = estimate(full, hardware, layout, workload).step_time_s
        assert (windowed < plain) is faster


ESTIMATE = ["plan", "estimate", "--accelerator", "H100", "--devices", "8", "--tp", "8",
            "--global-batch", "8", "--seq", "4096", "--json"]


def test_estimate_prints_the_choice_and_the_kernel_changes_the_answer():
    results = {}
    for kernel in ("unfused", "flash2"):
        out = RUNNER.invoke(cli, [*ESTIMATE, "--model", MPT, "--attention", kernel])
        assert out.exit_code == 0, out.output
        data = json.loads(out.output)
        assert data["attention"]["kernel"] == kernel
        assert data["attention"]["source"] == "option"
        results[kernel] = data["tokens_per_s"]
    assert results["flash2"] > results["unfused"]
    text = RUNNER.invoke(cli, [*ESTIMATE[:-1], "--model", "llama3-8b", "--framework", "hf"])
    assert "attention flash2 (framework: --framework hf" in text.output


@pytest.mark.parametrize("command", [
    ["plan", "search", "--accelerator", "H100", "--devices", "8", "--top", "1"],
    ["plan", "compare", "--devices", "8", "--accelerators", "H100"],
    ["plan", "size", "--accelerator", "H100", "--tokens", "1B", "--days", "30"],
])
def test_every_plan_command_takes_attention_and_framework(command):
    out = RUNNER.invoke(cli, [*command, "--model", "llama3-8b", "--framework", "torchtitan",
                              "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    choice = data[0]["attention"] if isinstance(data, list) else data["attention"]
    assert (choice["kernel"], choice["source"]) == ("flash2", "framework")
    bad = RUNNER.invoke(cli, [*command, "--model", "llama3-8b", "--attention", "magic"])
    assert isinstance(bad.exception, SpecError)
