#!/usr/bin/env bash
# A one-machine SLURM (munge + slurmctld + slurmd) for development and CI.
#
#   bash slurm/local-cluster.sh up       # install if missing, configure, start, wait until idle
#   bash slurm/local-cluster.sh status   # exit 0 when the node is idle/mixed/allocated
#   bash slurm/local-cluster.sh clear    # cancel every queued job, wait until the node is idle
#   bash slurm/local-cluster.sh down     # stop only the daemons `up` started
#
# Runs as root on Debian/Ubuntu without systemd or sudo. `up` is idempotent: daemons that already
# run are left alone, and `down` stops only those whose start `up` recorded, so a SLURM that was
# there before is never touched. Any failure exits non-zero with a message saying what failed.
set -euo pipefail

CLUSTER_NAME=espnet3-local
PARTITION=debug
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARKER="# written by espnet3 slurm/local-cluster.sh"
RUN_DIR=/run/slurm
STATE_DIR=/run/espnet3-local-slurm     # names of the daemons `up` started
CTLD_SPOOL=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
LOG_DIR=/var/log/slurm
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
IDLE_TIMEOUT=${ESPNET3_SLURM_IDLE_TIMEOUT:-60}

die() {
    echo "local-cluster.sh: $*" >&2
    exit 1
}

log() { echo "local-cluster.sh: $*"; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -N -o '%t' 2>/dev/null | head -n1 | tr -d '*~#' || true; }

install_packages() {
    local missing=()
    for binary in slurmctld slurmd sinfo munged; do
        command -v "$binary" >/dev/null || [[ -x /usr/sbin/$binary ]] || missing+=("$binary")
    done
    ((${#missing[@]} == 0)) && return
    log "installing slurm-wlm and munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; is the Debian package mirror reachable?"
    apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    [[ -f /etc/munge/munge.key ]] || {
        log "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    }
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --force || die "munged did not start (see /var/log/munge)"
    echo munged >>"$STATE_DIR/started"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "munged started but 'munge -n | unmunge' fails; see /var/log/munge/munged.log"
}

write_conf() {
    local node mem trimmed
    node=$(/usr/sbin/slurmd -C | head -n1) || die "'slurmd -C' failed; cannot describe this node"
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    [[ -n $mem ]] || die "'slurmd -C' printed no RealMemory: $node"
    # Leave ~15 % for the OS and the daemons so SLURM never hands out memory it cannot give.
    trimmed=$((mem * 85 / 100))
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$trimmed/" <<<"$node")
    if [[ -f $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script; refusing to overwrite it" \
            "(move it away, or use that SLURM directly)"
    fi
    local tmp
    tmp=$(mktemp "$CONF_DIR/.slurm.conf.XXXXXX")
    cat >"$tmp" <<EOF
$MARKER
ClusterName=$CLUSTER_NAME
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# A cancelled job's processes get SIGKILL 5 s after SIGTERM (default 30 s), so cancelled jobs
# leave squeue quickly.
KillWait=5
StateSaveLocation=$CTLD_SPOOL
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
$node
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
EOF
    chmod 644 "$tmp"
    if [[ -f $CONF ]] && cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$CONF"
        log "wrote $CONF ($node)"
    fi
}

start_slurm() {
    mkdir -p "$RUN_DIR" "$CTLD_SPOOL" "$SLURMD_SPOOL" "$LOG_DIR"
    # slurmctld refuses to start on state saved under another ClusterName.
    if [[ -f $CTLD_SPOOL/clustername ]] && [[ $(cat "$CTLD_SPOOL/clustername") != "$CLUSTER_NAME" ]]; then
        log "clearing $CTLD_SPOOL (state of another cluster name)"
        find "$CTLD_SPOOL" -mindepth 1 -delete
    fi
    if ! alive "$CTLD_PID"; then
        /usr/sbin/slurmctld || die "slurmctld did not start; see $LOG_DIR/slurmctld.log"
        echo slurmctld >>"$STATE_DIR/started"
    fi
    if ! alive "$SLURMD_PID"; then
        /usr/sbin/slurmd || die "slurmd did not start; see $LOG_DIR/slurmd.log"
        echo slurmd >>"$STATE_DIR/started"
    fi
}

wait_idle() {
    local state="" deadline=$((SECONDS + IDLE_TIMEOUT))
    while ((SECONDS < deadline)); do
        state=$(node_state)
        case $state in
            idle | mix | alloc) log "node $(hostname -s) is $state (partition $PARTITION)"; return ;;
            down | drain | drng) scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    die "node did not become idle within ${IDLE_TIMEOUT}s (last state: '${state:-no answer}');" \
        "see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log"
}

up() {
    [[ $(id -u) == 0 ]] || die "must run as root (it installs packages and starts daemons)"
    mkdir -p "$STATE_DIR"
    touch "$STATE_DIR/started"
    install_packages
    start_munge
    write_conf
    start_slurm
    wait_idle
    local queued
    queued=$(squeue -h -o %i | tr '\n' ' ')
    [[ -z $queued ]] || log "warning: jobs already queued: ${queued% }; the slurm tests need" \
        "a free node ('bash slurm/local-cluster.sh clear' cancels them)"
}

# Cancel every job of this cluster (a CI machine may be reused with jobs of an earlier, killed
# run still holding its cores) and wait until the queue is empty.
clear() {
    [[ -f $CONF ]] && grep -qxF "$MARKER" "$CONF" ||
        die "$CONF was not written by this script; refusing to cancel the jobs of that SLURM"
    local queued deadline=$((SECONDS + IDLE_TIMEOUT))
    queued=$(squeue -h -o %i | tr '\n' ' ')
    [[ -n $queued ]] || return 0
    log "cancelling jobs ${queued% }"
    # shellcheck disable=SC2086  # one argument per job id
    scancel $queued
    while [[ -n $(squeue -h -o %i) ]]; do
        ((SECONDS < deadline)) || die "jobs still queued ${IDLE_TIMEOUT}s after scancel:" \
            "$(squeue -h -o '%i %T' | tr '\n' ' ')see $LOG_DIR/slurmctld.log"
        sleep 0.5
    done
    wait_idle
}

stop() {
    local name=$1 pidfile=$2
    grep -qxF "$name" "$STATE_DIR/started" 2>/dev/null || return 0
    if alive "$pidfile"; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        log "stopped $name (pid $pid)"
    fi
    sed -i "/^$name\$/d" "$STATE_DIR/started"
}

down() {
    stop slurmd "$SLURMD_PID"
    stop slurmctld "$CTLD_PID"
    stop munged "$MUNGE_PID"
}

status() {
    local state
    state=$(node_state)
    case $state in
        idle | mix | alloc) log "up: node $(hostname -s) is $state"; sinfo ;;
        *) die "not up (node state: '${state:-no answer from slurmctld}')" ;;
    esac
}

case ${1:-} in
    up) up ;;
    clear) clear ;;
    down) down ;;
    status) status ;;
    *) die "usage: bash slurm/local-cluster.sh up|clear|down|status" ;;
esac
