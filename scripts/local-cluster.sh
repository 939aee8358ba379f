#!/usr/bin/env bash
# Start, stop or inspect a local test cluster of one engine on this machine, loopback only.
#
#   scripts/local-cluster.sh slurm start|stop|status      4 slurmd (n1..n4, 8 fake H100 each)
#   scripts/local-cluster.sh ray start|stop|status        a Ray head and 2 workers in a netns
#
# The cluster lives under $SUAN_CLUSTER_DIR (default /tmp/suan-clusters/<engine>); `start`
# installs the engine if it is missing (Debian's slurm-wlm as root; Ray into .venv), prints the
# environment to use it (`eval "$(scripts/local-cluster.sh slurm start)"`), and is a no-op when
# the cluster already runs. Every process is stopped by its recorded PID, never by name.
set -euo pipefail
engine=${1:-}; action=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
case "$engine" in
  slurm) exec bash "$here/cluster/slurm.sh" "${@:2}" ;;
  ray) exec bash "$here/cluster/ray.sh" "${@:2}" ;;
  *) echo "usage: $0 slurm|ray start|stop|status" >&2; exit 2 ;;
esac
