#!/usr/bin/env bash
# A 4-node Slurm cluster on 127.0.0.1 with munge authentication (see scripts/local-cluster.sh).
# Nodes n1..n4 each have 8 fake H100 (gres File= symlinks to /dev/null); n1,n2 carry the
# feature rack_r1 and n3,n4 rack_r2. Suan gets its own partition, `suan`.
set -euo pipefail
D=${SUAN_CLUSTER_DIR:-/tmp/suan-clusters/slurm}
NODES=${SUAN_SLURM_NODES:-4}
PORT=${SUAN_SLURM_PORT:-16800}   # slurmctld on PORT+17, slurmd n<i> on PORT+200+i
export SLURM_CONF=$D/slurm.conf

say_env() {
  echo "export SLURM_CONF=$SLURM_CONF"
  echo "# suan server config for this cluster: suan up --config $D/suan.yaml"
}

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "slurm is not installed and this is not root" >&2; exit 1; }
  apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >&2
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_config() {
  mkdir -p "$D"/{state,log,spool,dev,munge,munge-key}
  chmod 755 "$D" "$D/munge"   # jobs run as other accounts read slurm.conf and use munge's socket
  for n in $(seq 1 "$NODES"); do
    mkdir -p "$D/dev/n$n" "$D/spool/n$n"
    for g in 0 1 2 3 4 5 6 7; do ln -sfn /dev/null "$D/dev/n$n/gpu$g"; done
  done
  [ -f "$D/munge-key/munge.key" ] || dd if=/dev/urandom of="$D/munge-key/munge.key" bs=1024 count=1 status=none
  chmod 700 "$D/munge-key"; chmod 600 "$D/munge-key/munge.key"
  cat > "$D/slurm.conf" <<CONF
ClusterName=suan
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$((PORT + 17))
SlurmdPort=$((PORT + 18))
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
MailProg=/bin/true
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_min_interval=100000
ReturnToService=2
SlurmdTimeout=5
KillWait=5
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
NodeName=n[1-2] NodeHostname=localhost NodeAddr=127.0.0.1 Port=[$((PORT + 201))-$((PORT + 202))] CPUs=8 RealMemory=4000 Gres=gpu:h100:8 Feature=rack_r1 State=UNKNOWN
NodeName=n[3-$NODES] NodeHostname=localhost NodeAddr=127.0.0.1 Port=[$((PORT + 203))-$((PORT + 200 + NODES))] CPUs=8 RealMemory=4000 Gres=gpu:h100:8 Feature=rack_r2 State=UNKNOWN
PartitionName=suan Nodes=n[1-$NODES] Default=YES MaxTime=INFINITE State=UP
CONF
  cat > "$D/suan.yaml" <<YAML
# Suan on the local test cluster: its GRES are stand-ins, so ranks use gloo on the CPU.
engine: slurm
slurm:
  conf: $D/slurm.conf
  partition: suan
  simulated: true
inventorySeconds: 1
YAML
  : > "$D/gres.conf"
  for n in $(seq 1 "$NODES"); do
    echo "NodeName=n$n Name=gpu Type=h100 File=$D/dev/n$n/gpu[0-7]" >> "$D/gres.conf"
  done
}

wait_for() {  # wait_for CONDITION [TRIES]: every 0.1 s, 300 tries unless told
  local i
  for i in $(seq 1 "${2:-300}"); do eval "$1" && return 0; sleep 0.1; done
  echo "timed out waiting for: $1" >&2; return 1
}

start() {
  install
  if alive "$D/ctld.bgpid"; then say_env; return 0; fi
  write_config
  munged --force --socket="$D/munge/munge.sock" --key-file="$D/munge-key/munge.key" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" \
    --seed-file="$D/munge-key/munge.seed" >&2
  wait_for "[ -S $D/munge/munge.sock ]"
  cp "$D/munge/munged.pid" "$D/munge.bgpid"
  slurmctld -D -c -f "$SLURM_CONF" > "$D/log/slurmctld.out" 2>&1 &
  echo $! > "$D/ctld.bgpid"
  wait_for "scontrol ping 2>/dev/null | grep -q UP"
  for n in $(seq 1 "$NODES"); do start_node "n$n"; done
  wait_for '[ "$(sinfo -h -N -t idle -o %N | sort -u | wc -l)" = "$NODES" ]' 1200
  say_env
}

start_node() {  # (re)start one slurmd, e.g. after a test killed it
  slurmd -D -N "$1" -f "$SLURM_CONF" > "$D/log/slurmd-$1.out" 2>&1 &
  echo $! > "$D/slurmd-$1.bgpid"
}

stop() {
  if alive "$D/ctld.bgpid"; then scancel --partition=suan 2>/dev/null || true; sleep 1; fi
  for f in "$D"/slurmd-n*.bgpid "$D/ctld.bgpid" "$D/munge.bgpid"; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  # and any daemon of this cluster a recorded PID missed (its command line names $D)
  for proc in /proc/[0-9]*; do
    case "$(tr '\0' ' ' 2>/dev/null < "$proc/cmdline")" in
      slurmd\ *"$D/slurm.conf"*|slurmctld\ *"$D/slurm.conf"*|munged\ *"$D/munge/"*) kill "${proc#/proc/}" 2>/dev/null || true ;;
      slurmstepd:*)  # a step of this cluster's jobs outlives its slurmd: its env names our conf
        tr '\0' '\n' 2>/dev/null < "$proc/environ" | grep -qx "SLURM_CONF=$D/slurm.conf" \
          && kill -9 "${proc#/proc/}" 2>/dev/null || true ;;
    esac
  done
  sleep 0.5
}

status() {
  if alive "$D/ctld.bgpid"; then
    sinfo -N -o "%N %T %G %f %E"
  else
    echo "slurm: not running ($D)"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  start-node) start_node "$2" ;;
  env) say_env ;;
  *) echo "usage: slurm.sh start|stop|status|env|start-node NODE" >&2; exit 2 ;;
esac
