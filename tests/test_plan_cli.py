"""`suan plan ...` through the real CLI app: JSON keys and clean errors."""

import json

from typer.testing import CliRunner

from suan.cli.main import cli
from suan.errors import SpecError

RUNNER = CliRunner()
ESTIMATE = ["plan", "estimate", "--model", "llama3-8b", "--accelerator", "h100", "--devices", "16",
            "--tp", "2", "--pp", "1", "--global-batch", "64", "--seq", "4096", "--json"]


def test_estimate_json_has_the_promised_keys():
    result = RUNNER.invoke(cli, ESTIMATE)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("step_time_s", "tflops_per_device", "mfu", "hfu", "tokens_per_s",
                "memory_gib_per_device", "memory_gib"):
        assert key in data
    assert data["layout"]["dp"] == 8
    assert set(data["memory_gib"]) == {"weights", "gradients", "optimizer", "activations"}


def test_tp_not_dividing_heads_is_a_spec_error_naming_tp():
    result = RUNNER.invoke(cli, [*ESTIMATE[:8], "--tp", "3", *ESTIMATE[10:]])
    assert isinstance(result.exception, SpecError)
    assert "tp" in str(result.exception) and "1, 2, 4, 8" in str(result.exception)


def test_devices_not_matching_the_layout_is_a_spec_error():
    result = RUNNER.invoke(cli, [*ESTIMATE, "--dp", "4"])
    assert isinstance(result.exception, SpecError)
    assert "devices" in str(result.exception)


def test_unknown_accelerator_and_model_name_the_option():
    bad_accel = RUNNER.invoke(cli, [*ESTIMATE[:4], "--accelerator", "B999", *ESTIMATE[6:]])
    assert "--accelerator" in str(bad_accel.exception)
    bad_model = RUNNER.invoke(cli, ["plan", "estimate", "--model", "nope", *ESTIMATE[4:]])
    assert "--model" in str(bad_model.exception)


def test_search_compare_and_size_print_json():
    search = RUNNER.invoke(cli, ["plan", "search", "--model", "llama3-8b", "--accelerator",
                                 "H100", "--devices", "16", "--top", "2", "--json"])
    assert len(json.loads(search.output)["plans"]) == 2
    compare = RUNNER.invoke(cli, ["plan", "compare", "--model", "llama3-8b", "--devices", "16",
                                  "--json"])
    names = [row["accelerator"] for row in json.loads(compare.output)]
    assert set(names) == {"H100", "H800", "H20", "Ascend-910B"}
    size = RUNNER.invoke(cli, ["plan", "size", "--model", "llama3-8b", "--accelerator", "H100",
                               "--tokens", "100B", "--days", "7", "--json"])
    assert json.loads(size.output)["days"] <= 7
