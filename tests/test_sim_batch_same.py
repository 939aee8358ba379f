"""Traces without batch columns replay as before: the recorded Philly replays keep their
fingerprints, and a generic CSV with the batch columns present but empty decides exactly as
the same jobs read without them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_sim_replay_same import RECORD, TRACE, replay

from suan.cluster.generate import cluster_from_shorthand
from suan.sim.fingerprint import fingerprint
from suan.sim.reproduce import EVENT_DRIVEN, HELIOS_WINDOW
from suan.sim.simulator import simulate
from suan.sim.traces import read_generic, read_philly
from suan.sim.workload import TraceJob

COLUMNS = ("job_id", "submit_time", "duration", "num_gpus", "queue", "series",
           "time_limit", "dependency", "array")


@pytest.mark.parametrize("policy", ["fifo", "backfill", "las-preemptive"])
def test_a_recorded_philly_replay_keeps_its_fingerprint(shared, policy):
    recorded = json.loads(RECORD.read_text())["replays"][f"helios/{policy}"]
    assert replay("helios", policy, shared) == recorded


def _write_generic(path: Path, jobs: list[TraceJob]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for job in jobs:
            writer.writerow([job.job_id, repr(job.submit_time), repr(job.duration_s),
                             job.num_gpus, job.queue, job.series, "", "", ""])


@pytest.mark.parametrize("policy", ["fifo", "backfill"])
def test_empty_batch_columns_decide_as_a_trace_without_them(shared, tmp_path, policy):
    jobs = read_philly(shared(*TRACE), vcs={"ed69ec"}, start=HELIOS_WINDOW[0],
                       end=HELIOS_WINDOW[1]).jobs[:400]
    path = tmp_path / "philly.csv"
    _write_generic(path, jobs)
    from_csv = read_generic(path).jobs
    assert from_csv == jobs
    cluster = cluster_from_shorthand("4x8xV100")
    assert (fingerprint([simulate(from_csv, cluster, policy, EVENT_DRIVEN)])
            == fingerprint([simulate(jobs, cluster, policy, EVENT_DRIVEN)]))
