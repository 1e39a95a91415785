#!/usr/bin/env bash
# Start one node of the compose cluster: `ctl` (slurmctld) or `compute` (slurmd).
# The controller writes a fresh munge key and slurm.conf into the shared /cluster-config
# volume; compute nodes wait for them, so every node of one `up` shares the key.
# `run CMD...` only readies Apptainer (loop devices) and runs CMD: a one-off `docker run`.
set -euo pipefail
ROLE=${1:?usage: node-entrypoint.sh ctl|compute|run CMD...}
CFG=/cluster-config

# Loop devices are the host's and shared between containers: make them all up front, or the
# first concurrent `apptainer exec`s race to create them and fail.
for i in $(seq 0 63); do [[ -e /dev/loop$i ]] || mknod -m 660 /dev/loop$i b 7 "$i"; done
if [[ $ROLE == run ]]; then
    shift
    exec "$@"
fi

if [[ $ROLE == ctl ]]; then
    rm -f "$CFG/ready"
    dd if=/dev/urandom of="$CFG/munge.key" bs=1024 count=1 status=none
    cat >"$CFG/slurm.conf" <<CONF
ClusterName=espnet3-compose
SlurmctldHost=ctl
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=c[1-2] CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=c[1-2] Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=500
CONF
    touch "$CFG/ready"
else
    for _ in $(seq 1 300); do [[ -f $CFG/ready ]] && break; sleep 0.1; done
    [[ -f $CFG/ready ]] || { echo "node-entrypoint.sh: no slurm.conf from ctl" >&2; exit 1; }
fi

install -o munge -g munge -m 400 "$CFG/munge.key" /etc/munge/munge.key
mkdir -p /etc/slurm /run/slurm /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cp "$CFG/slurm.conf" /etc/slurm/slurm.conf
chown munge:munge /run/munge
runuser -u munge -- /usr/sbin/munged
if [[ $ROLE == ctl ]]; then
    /usr/sbin/slurmctld
else
    /usr/sbin/slurmd
fi
exec sleep infinity
