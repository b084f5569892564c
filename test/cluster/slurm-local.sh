#!/bin/bash
# A single-node Slurm cluster on this machine, for the cluster tests and the shards benchmark:
#   slurm-local.sh start DIR   starts munged, slurmctld and slurmd with their state, sockets and
#                              logs under DIR, and prints the SLURM_CONF to export
#   slurm-local.sh stop DIR    stops them
# It needs root (slurmd launches the tasks) and Debian's slurm-wlm and munge. On failure it
# says why on stderr and exits non-zero, so a caller can skip with that reason.
set -euo pipefail
cmd=${1:?usage: slurm-local.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: slurm-local.sh start|stop DIR}")

stop() {
  for p in slurmd slurmctld munged; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    alive=0
    for p in slurmd slurmctld munged; do
      [ -f "$dir/$p.pid" ] && kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  rm -f "$dir"/*.pid
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "slurmd must run as root to launch tasks, and this runs as $(id -un)" >&2; exit 3; }
for b in munged mungekey slurmctld slurmd sbatch squeue; do
  command -v "$b" >/dev/null || { echo "$b is not installed (Debian packages slurm-wlm and munge)" >&2; exit 3; }
done
mkdir -p "$dir"/{munge,state,spool,log}
chmod 700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || mungekey -c -k "$dir/munge/munge.key" >/dev/null
munged -f --socket="$dir/munge/sock" --key-file="$dir/munge/munge.key" --log-file="$dir/log/munged.log" \
  --pid-file="$dir/munged.pid" --seed-file="$dir/munge/seed" || { echo "munged did not start: $(tail -3 "$dir/log/munged.log")" >&2; exit 4; }
cpus=$(nproc)
cat > "$dir/slurm.conf" <<CONF
ClusterName=embaug-local
SlurmctldHost=localhost
SlurmctldPort=${SLURM_LOCAL_PORT:-16817}
SlurmdPort=$(( ${SLURM_LOCAL_PORT:-16817} + 1 ))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmUser=root
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=localhost CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -i || { echo "slurmctld did not start: $(tail -3 "$dir/log/slurmctld.log" 2>/dev/null)" >&2; stop; exit 4; }
slurmd -N localhost || { echo "slurmd did not start: $(tail -3 "$dir/log/slurmd.log" 2>/dev/null)" >&2; stop; exit 4; }
for _ in $(seq 100); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle'; then echo "$SLURM_CONF"; exit 0; fi
  sleep 0.2
done
echo "the node did not come up idle within 20 s: $(sinfo 2>&1 | tail -2); $(tail -3 "$dir/log/slurmd.log" 2>/dev/null)" >&2
stop
exit 4
