#!/usr/bin/env bash
# A local Ray 2.60 cluster: a head (h0, rack r0) and workers w1, w2 (rack r1), each with 8 fake
# H100 (`--num-gpus=8 --resources='{"accel:H100": 8}'`) and the labels suan/node, suan/rack.
# See scripts/local-cluster.sh; usage: ray.sh start|stop|status|env.
#
# Ray binds every interface and has no loopback-only option, so every Ray process runs inside
# the network namespace $SUAN_RAY_NETNS (default suanray) whose only interface is `lo`. The
# Suan Ray adapter (python -m suan.exec.ray_adapter) runs in there too and serves the server
# outside on a Unix socket. `start` is a no-op for what already runs, and restarts a node
# whose `ray start --block` died (e.g. after a test killed its raylet). `stop` ends the
# recorded PIDs, then whatever is left in the namespace, by PID; it never runs `ray stop`.
#
# The cluster requires a token (Ray's RAY_AUTH_MODE=token): $D/auth_token, readable by root
# alone. Ray's own processes and the adapter read it; a rank, which runs as its user's account
# with every RAY_* variable removed, cannot connect to the GCS, so it cannot list, read or kill
# another gang's actors.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
D=${SUAN_CLUSTER_DIR:-/tmp/suan-clusters/ray}
NS=${SUAN_RAY_NETNS:-suanray}
PORT=${SUAN_RAY_PORT:-26379}
WORKERS=${SUAN_RAY_WORKERS:-2}
BIN=$here/.venv/bin
SOCK=$D/adapter.sock
export RAY_USAGE_STATS_ENABLED=0 PATH=$BIN:$PATH
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$D/auth_token
# GCS marks a silent node dead after period x threshold (Ray's defaults: 3000 ms x 5 = 15 s).
export RAY_health_check_period_ms=${RAY_health_check_period_ms:-1000}
export RAY_health_check_failure_threshold=${RAY_health_check_failure_threshold:-3}
common=(--node-ip-address=127.0.0.1 --num-cpus=4 --num-gpus=8 --object-store-memory=100000000
        --disable-usage-stats --block --resources='{"accel:H100": 8}')

say_env() {
  echo "export SUAN_RAY_ADDRESS=127.0.0.1:$PORT"
  echo "export SUAN_RAY_SOCKET=$SOCK"
  echo "export SUAN_RAY_NETNS=$NS"
  echo "export SUAN_RAY_TOKEN_FILE=$D/auth_token"
  echo "# suan server config for this cluster: suan up --config $D/suan.yaml"
}

write_server_config() {
  cat > "$D/suan.yaml" <<YAML
# Suan on the local Ray cluster: its GPUs are stand-ins, so ranks use gloo on the CPU.
engine: ray
ray:
  socket: $SOCK
  address: 127.0.0.1:$PORT
  netns: $NS
  authTokenFile: $D/auth_token
  simulated: true
inventorySeconds: 1
YAML
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
  [ -x "$BIN/python" ] || { echo "no .venv here ($here); run make venv first" >&2; exit 1; }
  "$BIN/python" -c "import ray" 2>/dev/null && return 0
  "$BIN/pip" install -q 'ray[default]==2.60.0' >&2
}

netns() {
  [ "$(id -u)" = 0 ] || { echo "ray.sh needs root for the network namespace $NS" >&2; exit 1; }
  ip netns list | grep -qw "$NS" && return 0
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
}

start_head() {
  ip netns exec "$NS" ray start --head --port="$PORT" --include-dashboard=false \
    --ray-client-server-port=$((PORT - 6378 + 1)) --dashboard-agent-listen-port=52365 \
    --min-worker-port=30000 --max-worker-port=30199 --temp-dir="$D/tmp-h0" "${common[@]}" \
    --labels="suan/node=h0,suan/rack=r0" > "$D/log/h0.log" 2>&1 &
  echo $! > "$D/pids/h0"
}

start_worker() {  # start_worker N: node wN, rack r1 for w1/w2, r2 for w3/w4, ...
  local w=$1 lo=$((30000 + 200 * $1))
  ip netns exec "$NS" ray start --address="127.0.0.1:$PORT" --include-log-monitor=false \
    --temp-dir="$D/tmp-w$w" --dashboard-agent-listen-port=$((52365 + w)) \
    --min-worker-port=$lo --max-worker-port=$((lo + 199)) "${common[@]}" \
    --labels="suan/node=w$w,suan/rack=r$(((w + 1) / 2))" > "$D/log/w$w.log" 2>&1 &
  echo $! > "$D/pids/w$w"
}

start_adapter() {
  (cd "$here" && exec ip netns exec "$NS" "$BIN/python" -m suan.exec.ray_adapter \
    --address "127.0.0.1:$PORT" --socket "$SOCK") > "$D/log/adapter.log" 2>&1 &
  echo $! > "$D/pids/adapter"
}

# Ask the adapter (stdlib client, outside the namespace) until WANT nodes are alive; bounded.
wait_alive() {
  "$BIN/python" -I -S - "$SOCK" "$1" "${2:-120}" <<'PY'
import json, socket, sys, time
path, want, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t0 = time.time(); seen = -1
while time.time() - t0 < limit:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10); s.connect(path)
            s.sendall(b'{"op": "nodes"}\n')
            reply = json.loads(s.makefile().readline())
        names = {n["Labels"].get("suan/node") for n in reply.get("result", []) if n["Alive"]}
        seen = len(names)
        if seen >= want:
            print(f"ray: {seen} nodes alive after {time.time() - t0:.1f}s", file=sys.stderr)
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.3)
sys.exit(f"ray: only {seen} of {want} nodes alive after {limit:.0f}s; see the logs")
PY
}

start() {
  install
  netns
  mkdir -p "$D/pids" "$D/log"
  [ -s "$D/auth_token" ] || (umask 077 && "$BIN/python" -c \
    'import secrets; print(secrets.token_hex(32))' > "$D/auth_token")
  chmod 600 "$D/auth_token"
  alive "$D/pids/h0" || start_head
  for w in $(seq 1 "$WORKERS"); do alive "$D/pids/w$w" || start_worker "$w"; done
  alive "$D/pids/adapter" || start_adapter
  wait_alive $((WORKERS + 1)) || { tail -5 "$D"/log/*.log >&2; exit 1; }
  write_server_config
  say_env
}

stop() {
  # SIGTERM each recorded process (a `ray start --block` then stops its node), wait up to 6 s
  # for them, then SIGKILL what is still in the namespace, by PID.
  local f pids="" left i
  for f in "$D"/pids/*; do
    [ -f "$f" ] || continue
    pids="$pids $(cat "$f")"
    kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for i in $(seq 1 30); do
    left=""; for f in $pids; do kill -0 "$f" 2>/dev/null && left="$left $f"; done
    [ -z "$left" ] && break; sleep 0.2
  done
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    left=$(ip netns pids "$NS")
    [ -n "$left" ] && kill -9 $left 2>/dev/null || true
    for i in $(seq 1 25); do [ -z "$(ip netns pids "$NS")" ] && break; sleep 0.2; done
    ip netns del "$NS" || true
  fi
  rm -f "$D"/pids/* "$SOCK"
}

status() {
  local f up=0
  for f in "$D"/pids/*; do
    [ -f "$f" ] || continue
    if alive "$f"; then echo "$(basename "$f") pid $(cat "$f") running"; up=1
    else echo "$(basename "$f") pid $(cat "$f") gone"; fi
  done
  [ "$up" = 1 ] || { echo "ray: not running ($D)"; return 1; }
  [ -S "$SOCK" ] && wait_alive 0 5 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) say_env ;;
  *) echo "usage: ray.sh start|stop|status|env" >&2; exit 2 ;;
esac
