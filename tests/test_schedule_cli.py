"""`suan schedule`, `suan policies` and `suan demo` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from suan.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
runner = CliRunner()


def test_schedule_json_has_the_documented_shape():
    result = runner.invoke(cli, ["schedule", "--cluster", str(EXAMPLES / "clusters" /
                                 "mixed-h100-910b.yaml"), "--jobs",
                                 str(EXAMPLES / "jobs" / "mixed.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) == {"placements", "preemptions", "pending", "reservation"}
    placed = {p["job"]: p for p in document["placements"]}
    assert "pretrain-70b" in placed
    replicas = placed["pretrain-70b"]["replicas"]
    assert len(replicas) == 16 and all(len(r["devices"]) == 8 for r in replicas)
    assert len({(r["node"], d) for r in replicas for d in r["devices"]}) == 128
    assert placed["pretrain-70b"]["reason"]


def test_schedule_reports_why_a_job_waits():
    result = runner.invoke(cli, ["schedule", "--cluster", "2x8xH100", "--jobs",
                                 str(EXAMPLES / "jobs" / "llama-pretrain.yaml"), "--json"])
    document = json.loads(result.output)
    [wait] = document["pending"]
    assert wait["code"] == "unschedulable" and "needs 64" in wait["reason"]


def test_unknown_policy_is_a_clear_error_not_a_traceback():
    finished = subprocess.run(
        [sys.executable, "-m", "suan.cli.main", "schedule", "--cluster", "2x8xH100", "--jobs",
         str(EXAMPLES / "jobs" / "mixed.yaml"), "--policy", "nope"],
        capture_output=True, text=True, timeout=60,
    )
    assert finished.returncode == 2
    assert "unknown policy 'nope'" in finished.stderr and "default" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_policies_lists_the_registry():
    result = runner.invoke(cli, ["policies", "--json"])
    names = {item["name"] for item in json.loads(result.output)}
    assert {"default", "fifo", "sjf", "srtf", "las", "fairshare", "backfill"} <= names


def test_demo_places_preempts_and_explains():
    result = runner.invoke(cli, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "pretrain-70b" in result.output
    assert "preempted for job urgent-fix" in result.output
    assert "reserved to start" in result.output
