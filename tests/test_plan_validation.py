"""The frozen validation rows, their reader, and the accuracy benchmark's command-line path."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

from suan.plan.validation import (
    DATA_DIR,
    FROZEN_FILES,
    KINDS,
    VALIDATION_CSV,
    VALIDATION_FILES,
    Case,
    estimate_args,
    parse_case,
    read_cases,
    sequence_band,
    sha256_of,
)

BENCH = Path(__file__).resolve().parents[1] / "bench" / "planner_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("planner_accuracy", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.mark.parametrize("name", sorted(FROZEN_FILES))
def test_validation_rows_are_frozen(name):
    found = sha256_of(DATA_DIR / name)
    assert found == FROZEN_FILES[name], (
        f"validation rows are frozen: suan/plan/{name} changed (sha256 {found}, pinned "
        f"{FROZEN_FILES[name]}). Put new rows in a new file with its own pinned hash; never "
        "edit a row, drop it, or move it into calibration after its error was seen.")


def test_every_validation_file_is_pinned():
    files = {path.name for path in DATA_DIR.glob("validation*.csv")}
    assert files and files <= set(FROZEN_FILES), f"unpinned validation files: {files}"


def test_each_validation_row_cites_its_source_and_names_its_group():
    records = []
    for path in VALIDATION_FILES:
        with path.open(newline="") as handle:
            records += list(csv.DictReader(handle))
    assert len({rec["row_id"] for rec in records}) == len(records)
    for rec in records:
        detail = rec["source_detail"]
        assert "@" in detail or "http" in detail, rec["row_id"]
        assert rec["kind"] in KINDS, rec["row_id"]
        assert rec["config"] or (rec["num_layers"] and rec["hidden_size"]), rec["row_id"]
        assert rec["accelerator"] and rec["framework"], rec["row_id"]
        assert rec["tokens_per_s_per_gpu"] or rec["mem_GiB_per_gpu"], rec["row_id"]


def test_reader_keeps_the_published_layout():
    cases = {case.row_id: case for case in read_cases(VALIDATION_CSV)}
    run = cases["V35"]  # DeepSeek-V3, 1024 H100, TP2 PP8 VP4 EP64, 4K tokens
    assert (run.model, run.accelerator, run.devices) == ("deepseek-v3", "H100", 1024)
    assert {key: run.options[key] for key in ("tp", "pp", "vpp", "ep", "dp", "seq")} == {
        "tp": 2, "pp": 8, "vpp": 4, "ep": 64, "dp": 64, "seq": 4096}
    assert run.band == "2-4k" and run.precision == "fp8" and run.kind == "large-3d"
    assert run.options["zero"] == 1  # "distributed optimizer (FSDP=0)"
    assert cases["V32"].options["zero"] == 3  # "Megatron FSDP (FSDP=1)"
    unprinted = cases["V13"]  # torchtitan prints no pipeline micro-batch size
    assert "micro-batch" not in unprinted.options


def test_a_row_without_a_measurement_is_skipped():
    with VALIDATION_CSV.open(newline="") as handle:
        record = next(csv.DictReader(handle))
    assert parse_case(record) is not None
    assert parse_case({**record, "tokens_per_s_per_gpu": "", "mem_GiB_per_gpu": ""}) is None


def test_a_model_given_by_shape_gets_its_authors_config_dialect():
    from suan.plan.validation import HOLDOUT_CSV

    mpt = next(case for case in read_cases(HOLDOUT_CSV) if case.model.startswith("MPT"))
    assert mpt.config["model_type"] == "mpt" and "d_model" in mpt.config
    assert mpt.framework == "llm-foundry" and mpt.kind == "fsdp"


def test_sequence_bands():
    assert [sequence_band(s) for s in (512, 1024, 2048, 4096, 8192, 65536, 131072)] == [
        "<=1k", "<=1k", "2-4k", "2-4k", "8-64k", "8-64k", ">64k"]


def test_options_the_command_does_not_take_are_left_out():
    case = Case(row_id="X", source="s", kind="fsdp", framework="torchtitan", model="llama3-8b",
                config=None, accelerator="H100", devices=8,
                options={"tp": 1, "seq": 8192, "global-batch": 16, "precision": "fp8",
                         "fp8-recipe": "current", "sequence-parallel": True})
    args = estimate_args(case, "llama3-8b", frozenset({"--tp", "--seq", "--global-batch",
                                                       "--precision", "--sequence-parallel"}))
    assert "--fp8-recipe" not in args and "--framework" not in args
    assert args[args.index("--tp") + 1] == "1" and "--sequence-parallel" in args
    assert "True" not in args


def test_benchmark_runs_three_rows_through_the_command(bench, tmp_path):
    accepted = bench.accepted_options()
    assert {"--tp", "--pp", "--global-batch", "--seq"} <= accepted
    cases = [case for case in read_cases(VALIDATION_CSV) if case.row_id in {"V1", "V21", "V30"}]
    outcomes = [bench.run_case(case, "validation", tmp_path, accepted) for case in cases]
    assert [o.exit_code for o in outcomes] == [0, 0, 0], [o.message for o in outcomes]
    for outcome in outcomes:
        layout = outcome.prediction["layout"]
        assert layout["tp"] == outcome.case.options["tp"]
        assert layout["pp"] == outcome.case.options["pp"]
        assert outcome.prediction["devices"] == outcome.case.devices
        assert outcome.prediction["tokens_per_s_per_device"] > 0
    summary = bench.summarise(outcomes)
    assert summary["rows"] == 3 and summary["tokens_per_s_rows"] == 3
    assert summary["memory_rows"] == 1  # only the torchtitan row measured memory


def test_benchmark_reports_a_refused_layout_with_the_commands_message(bench, tmp_path):
    case = Case(row_id="R", source="s", kind="fsdp", framework="", model="llama3-8b",
                config=None, accelerator="no-such-part", devices=8,
                options={"seq": 8192, "global-batch": 16}, tokens_per_s_per_device=1000.0)
    outcome = bench.run_case(case, "validation", tmp_path, bench.accepted_options())
    assert outcome.exit_code == 2 and outcome.prediction is None
    assert "no-such-part" in outcome.message
    document = bench.report([outcome], cpu_s=0.0, with_rows=True)
    assert document["refused"]["count"] == 1
    assert document["refused"]["rows"][0]["row"] == "R"
    assert document["overall"]["tokens_per_s_rows"] == 0


def test_llm_foundry_rows_carry_the_attention_their_benchmark_yamls_set():
    from suan.plan.attention import choose_attention
    from suan.plan.models import load_model
    from suan.plan.validation import HOLDOUT_CSV

    foundry = [case for case in read_cases(HOLDOUT_CSV) if case.framework == "llm-foundry"]
    assert foundry
    for case in foundry:
        assert case.config is not None
        assert case.config["attn_config"] == {"attn_impl": "triton", "alibi": False}
    spec = load_model({k: v for k, v in foundry[0].config.items() if k != "_name"})
    choice = choose_attention(spec, None, "llm-foundry")
    assert (choice.kernel, choice.source) == ("flash-full", "config")
