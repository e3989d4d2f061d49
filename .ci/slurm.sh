#!/usr/bin/env bash
# CI's SLURM check (docs/running.md): the Snakemake profile profiles/slurm, with
# snakemake-executor-plugin-slurm, on a real single-node SLURM started on localhost:
#   1. slurm-wlm and munge come from Debian's packages (slurm 22.05 on Debian 12);
#   2. munged, slurmctld and slurmd start on this machine, with state, spool, logs and pid files in a
#      temporary directory; slurm.conf goes to /etc/slurm/slurm.conf, where the plugin's job steps look
#      for it (they drop SLURM_CONF from srun's environment), and is removed at the end;
#   3. tests/test_slurm.py runs a small target of the CPU default through `--profile profiles/slurm` and
#      checks that every job ran as a SLURM job and that its outputs equal the expected manifest.
# Every daemon started here is stopped by its PID at exit, and every job left in the queue is cancelled.
# Usage: bash .ci/slurm.sh      (as root on Debian; about 2 minutes; skips, exit 0, where it cannot run)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CONF=/etc/slurm/slurm.conf
MARK="# written by .ci/slurm.sh"
step() { echo "== $(date -u +%H:%M:%S) $*"; }
skip() { echo "== SLURM check skipped: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "it needs root (apt-get, /etc/slurm, the daemons)"
command -v apt-get >/dev/null || skip "it needs Debian's apt-get"
if [ -e "$CONF" ] && ! grep -qx "$MARK" "$CONF"; then skip "$CONF exists: this machine has a SLURM of its own"; fi
for port in 6817 6818; do  # slurmctld's and slurmd's default ports
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then skip "port $port is in use"; fi
done

step "install slurm-wlm and munge"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/et-slurm.XXXXXX)
pids=()
cleanup() {
  rc=$?
  set +e
  if [ "${#pids[@]}" -gt 0 ]; then
    jobs_left=$(squeue -h -o %i 2>/dev/null)
    [ -n "$jobs_left" ] && { echo "cancelling SLURM jobs left: $jobs_left"; scancel $jobs_left; sleep 2; }
    [ "$rc" != 0 ] && tail -n 20 "$work"/slurmctld.log "$work"/slurmd.log
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  fi
  grep -qx "$MARK" "$CONF" 2>/dev/null && rm -f "$CONF"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

step "munge"
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge /run/munge
  setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F >"$work/munged.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null
fi

step "slurmctld and slurmd on localhost"
mkdir -p "$work/state" "$work/spool"
# The node as slurmd sees it, with 128 GB declared (config_overrides: SLURM trusts slurm.conf): the profile
# asks 64 GB for each job that loads a model, sized for the paper's 7B models. Nothing here enforces memory
# (no cgroup or accounting plugins).
node=$(slurmd -C | head -1 | sed 's/RealMemory=[0-9]*/RealMemory=131072/')
cat > "$CONF" <<EOF
$MARK
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF
slurmctld -D -i >"$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D >"$work/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ "$(sinfo -h -p cpu -o %T 2>/dev/null)" = idle ] && break; sleep 0.2; done
sinfo

step "tests/test_slurm.py: a target of the CPU default through --profile profiles/slurm"
export USER=${USER:-root}
ET_SLURM_TEST=1 timeout -s KILL 300 "$PY" -m pytest -q -p no:cacheprovider tests/test_slurm.py
step "done"
