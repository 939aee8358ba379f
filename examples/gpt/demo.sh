#!/usr/bin/env bash
# The control plane end to end on this machine, in a throwaway SUAN_HOME:
#   start a server with 8 simulated H100 slots, submit the 4-rank GPT job, kill one rank with
#   SIGKILL after the first checkpoint, watch the gang restart and resume from it, describe the
#   job, stop the server.      Usage: bash examples/gpt/demo.sh   (from anywhere; needs torch)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
SUAN="$BIN/suan"
PY="$BIN/python"
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "the GPT example needs torch: $PY -m pip install torch==2.13.0" >&2
    exit 2
fi
export SUAN_HOME="${SUAN_HOME:-$(mktemp -d)/suan}"
unset SUAN_SERVER SUAN_TOKEN
PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
trap '"$SUAN" down >/dev/null 2>&1 || true' EXIT

echo "== suan up"
"$SUAN" up --devices 8xH100 --port "$PORT" --restart-backoff 1 --stop-grace 5
"$SUAN" nodes
echo "== suan submit examples/gpt/job.yaml"
JOB=$("$SUAN" submit examples/gpt/job.yaml)
echo "$JOB"
"$PY" - "$JOB" <<'PYEOF'
"""Wait for the first checkpoint, then SIGKILL the training process of rank 2."""
import os, signal, sys, time
from pathlib import Path
from suan import Client

client, job_id = Client(), sys.argv[1]
deadline = time.monotonic() + 300
while True:
    job = client.describe(job_id)
    if job["state"] == "running" and (Path(job["checkpoint_dir"]) / "ckpt.pt").exists():
        break
    if job["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
        sys.exit(f"the job is {job['state']} before its first checkpoint; see suan logs {job_id}")
    time.sleep(0.2)
shim = job["ranks_detail"][2]["pid"]
rank = int(Path(f"/proc/{shim}/task/{shim}/children").read_text().split()[0])
print(f"== first checkpoint saved; kill -9 {rank} (rank 2's training process)", flush=True)
os.kill(rank, signal.SIGKILL)
PYEOF
echo "== suan logs $JOB -f   (rank 0: the gang restarts and resumes from its checkpoint)"
"$SUAN" logs "$JOB" -f
echo "== suan describe $JOB"
"$SUAN" describe "$JOB" | sed -n '1,/^spec:/p'
echo "logs: $SUAN_HOME/jobs/$JOB/logs/rank-*.log   (or: suan logs $JOB --rank N)"
echo "== suan jobs --all"
"$SUAN" jobs --all
echo "== suan down"
"$SUAN" down
