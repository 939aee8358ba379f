"""Uneven pipeline stages: Megatron's split rules, given first/last-stage counts, and the
published layouts they let through the planner."""

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from suan.cli.main import cli
from suan.errors import SpecError
from suan.plan.estimate import estimate
from suan.plan.hardware import hardware_for
from suan.plan.layout import Layout, Workload, layout_problems
from suan.plan.models import load_model
from suan.plan.stages import default_stage_layers, stage_layers

RUNNER = CliRunner()
LLAMA3_405B = ["plan", "estimate", "--model", "llama3-405b", "--accelerator", "H100",
               "--devices", "16384", "--tp", "8", "--pp", "16", "--dp", "128",
               "--global-batch", "2048", "--seq", "8192", "--sequence-parallel", "--json"]
"""Llama 3 405B as trained (Llama 3 paper Table 4: 16,384 H100, TP 8, PP 16, DP 128, 8K
sequences, 16M-token batches)."""


def test_llama3_405b_splits_126_layers_as_megatron_accounting_for_embedding_and_loss():
    assert default_stage_layers(126, 16) == (7, *[8] * 14, 7)


def test_an_even_split_stays_even_and_vpp_sums_chunks_per_device():
    assert default_stage_layers(80, 4) == (20, 20, 20, 20)
    assert default_stage_layers(80, 4, 2) == (20, 20, 20, 20)
    # 126 layers on 8 ranks × 2 chunks: 16 virtual stages of 8, first and last 7.
    assert default_stage_layers(126, 8, 2) == (15, 16, 16, 16, 16, 16, 16, 15)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(layers=st.integers(1, 200), pp=st.integers(1, 64), vpp=st.integers(1, 4))
def test_default_split_keeps_every_layer_and_stages_within_one_of_each_other(layers, pp, vpp):
    assume(layers >= pp * vpp)
    counts = default_stage_layers(layers, pp, vpp)
    assert sum(counts) == layers and len(counts) == pp
    assert max(counts) - min(counts) <= vpp
    if pp > 2:
        assert counts[0] <= min(counts[1:-1]) and counts[-1] <= min(counts[1:-1])


def test_given_first_and_last_counts_split_the_rest_evenly():
    layout = Layout(pp=4, first_stage_layers=5, last_stage_layers=3)
    assert stage_layers(32, layout) == (5, 12, 12, 3)
    assert stage_layers(32, Layout(pp=4, first_stage_layers=8)) == (8, 8, 8, 8)


def test_given_counts_that_do_not_add_up_name_the_option():
    model, workload = load_model("llama3-8b"), Workload(seq=4096, global_batch=8)
    uneven = layout_problems(model, Layout(pp=4, first_stage_layers=4), workload)
    assert [p.path for p in uneven] == ["first_stage_layers"]
    assert "do not split evenly" in uneven[0].message
    too_many = layout_problems(model, Layout(pp=2, first_stage_layers=40), workload)
    assert too_many[0].path == "first_stage_layers"
    chunked = layout_problems(model, Layout(pp=4, vpp=2, first_stage_layers=5,
                                            last_stage_layers=3), Workload(4096, 16))
    assert [p.path for p in chunked] == ["vpp"]


def test_more_stages_than_layers_is_refused_naming_pp():
    problems = layout_problems(load_model("llama3-8b"), Layout(pp=64), Workload(4096, 64))
    assert problems[0].path == "pp" and "exceeds num_layers=32" in problems[0].message


def test_the_heaviest_stage_sets_the_pace_and_the_memory():
    model, hardware = load_model("llama3-70b"), hardware_for("H100")
    workload = Workload(seq=4096, global_batch=64)
    even = estimate(model, hardware, Layout(tp=8, pp=4, dp=1), workload)
    heavy = estimate(model, hardware, Layout(tp=8, pp=4, dp=1, first_stage_layers=26,
                                             last_stage_layers=18), workload)
    assert heavy.time.compute > even.time.compute
    assert heavy.memory_gib > even.memory_gib


def test_llama3_405b_published_layout_is_estimated_with_exit_code_0():
    result = RUNNER.invoke(cli, LLAMA3_405B)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stage_layers"] == [7, *[8] * 14, 7]
    assert data["devices"] == 16384 and data["tokens_per_s"] > 0
    assert isinstance(data["fits"], bool)


def test_cli_takes_first_and_last_stage_counts():
    result = RUNNER.invoke(cli, [*LLAMA3_405B, "--first-stage-layers", "5",
                                 "--last-stage-layers", "9"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stage_layers"] == [5, *[8] * 14, 9]
    bad = RUNNER.invoke(cli, [*LLAMA3_405B, "--first-stage-layers", "7"])
    assert isinstance(bad.exception, SpecError)
    assert "first_stage_layers" in str(bad.exception)


def test_sequence_parallel_at_tp_1_is_a_no_op_with_a_note():
    model, hardware = load_model("llama3-8b"), hardware_for("H100")
    workload = Workload(seq=4096, global_batch=64)
    with_sp = estimate(model, hardware, Layout(dp=8, sequence_parallel=True), workload)
    without = estimate(model, hardware, Layout(dp=8), workload)
    assert with_sp.step_time_s == pytest.approx(without.step_time_s)
    assert with_sp.memory_gib == pytest.approx(without.memory_gib)
    assert any("sequence parallelism" in note for note in with_sp.notes)
    assert not without.notes


def test_the_embedding_and_the_loss_may_fill_a_virtual_stage_each():
    from suan.plan.layout import Layout
    from suan.plan.stages import StageProblem, stage_layers, stage_layers_or_problem

    counts = stage_layers(126, Layout(pp=16, vpp=8))
    assert counts == (7, *([8] * 14), 7) and sum(counts) == 126
    refused = stage_layers_or_problem(126, Layout(pp=16, vpp=9))
    assert isinstance(refused, StageProblem) and "embedding and the loss" in refused.message
