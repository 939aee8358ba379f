"""Answers a user can act on: whether a layout fits, a disputed MFU peak, and a cluster size
that says when the deadline cannot be met and what would meet it."""

import json

from typer.testing import CliRunner

from suan.catalog import default_catalog
from suan.cli.main import cli
from suan.plan.advice import plan_search, size_cluster

RUNNER = CliRunner()
SEVENTY_B_ON_8 = ["plan", "estimate", "--model", "llama3-70b", "--accelerator", "H100",
                  "--devices", "8", "--tp", "8", "--global-batch", "8", "--seq", "4096",
                  "--zero", "0"]


def test_a_layout_that_does_not_fit_is_estimated_with_fits_false_and_a_warning():
    result = RUNNER.invoke(cli, [*SEVENTY_B_ON_8, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["fits"] is False
    assert data["memory_gib_per_device"] > data["memory_capacity_gib"]
    assert any("does not fit" in text for text in data["warnings"])
    assert "warning: does not fit" in result.stderr
    text = RUNNER.invoke(cli, SEVENTY_B_ON_8)
    assert "fits: NO" in text.output and "warning: does not fit" in text.output


def test_a_layout_that_fits_says_so_without_warnings():
    result = RUNNER.invoke(cli, ["plan", "estimate", "--model", "llama3-8b", "--accelerator",
                                 "H100", "--devices", "8", "--global-batch", "64", "--seq",
                                 "4096", "--recompute", "full", "--json"])
    data = json.loads(result.stdout)
    assert data["fits"] is True and data["warnings"] == [] and data["peak_disputed"] is None


def test_mfu_on_a_disputed_peak_carries_the_catalogs_caveat():
    caveat = default_catalog().get("Ascend-910B").peak_disputed
    assert "280-376" in caveat
    result = RUNNER.invoke(cli, ["plan", "estimate", "--model", "llama3-8b", "--accelerator",
                                 "910B", "--devices", "8", "--global-batch", "64", "--seq",
                                 "4096", "--json"])
    data = json.loads(result.stdout)
    assert data["peak_disputed"] == caveat
    assert any("disputed peak" in text and caveat in text for text in data["warnings"])
    text = RUNNER.invoke(cli, ["plan", "compare", "--model", "llama3-8b", "--devices", "8",
                               "--accelerators", "H100,910B"]).output.splitlines()
    assert "(disputed peak)" in text[1] and "(disputed peak)" not in text[0]


def test_size_uses_the_top_plan_search_picks_at_the_answered_count():
    sizing = size_cluster("llama3-8b", "H100", 1e11, 7)
    assert sizing.met and sizing.days <= 7
    best = plan_search("llama3-8b", "H100", sizing.devices).best
    assert sizing.plan.layout == best.layout


def test_size_says_when_the_deadline_cannot_be_met_and_which_batch_would_meet_it():
    sizing = size_cluster("llama3-8b", "H100", 2e12, 7, global_batch=64)
    assert not sizing.met and sizing.days > 7
    # The answer is the fastest count: twice the devices are not faster at this batch.
    double = plan_search("llama3-8b", "H100", 2 * sizing.devices, global_batch=64).best
    assert double is None or double.tokens_per_s <= sizing.plan.tokens_per_s
    batch, devices, days = sizing.larger_batch
    assert batch > 64 and days <= 7
    assert plan_search("llama3-8b", "H100", devices, global_batch=batch).best.tokens_per_s * (
        7 * 86_400) >= 2e12
    assert "cannot be met" in sizing.advice() and f"{batch} sequences" in sizing.advice()
