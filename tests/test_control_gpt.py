"""The GPT example under a real server: 4 ranks of PyTorch DDP over gloo train, checkpoint and
finish."""

from __future__ import annotations

from pathlib import Path

from control_helpers import server as server

EXAMPLE = Path(__file__).parents[1] / "examples" / "gpt"


def test_the_gpt_example_trains_with_ddp_on_four_ranks_and_checkpoints(server):
    spec = (EXAMPLE / "job.yaml").read_text()
    spec = spec.replace('--steps, "200"', '--steps, "20"').replace(
        '--checkpoint-every, "50"', '--checkpoint-every, "10"'
    )
    client = server.client()
    [job_id] = client.submit(spec, workdir=str(EXAMPLE.parents[1]))
    job = client.wait(job_id, timeout=55)
    assert job["state"] == "succeeded", client.logs(job_id)["data"]
    log = client.logs(job_id, rank=0)["data"]
    assert "world 4, backend gloo" in log and "step   20" in log and "final loss" in log
    assert (Path(job["checkpoint_dir"]) / "ckpt.pt").exists()
    assert [r["exit_code"] for r in job["ranks_detail"]] == [0, 0, 0, 0]
