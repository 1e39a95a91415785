#!/usr/bin/env bash
# Start the docker engine (containerd + dockerd, no systemd) unless it is already running;
# install docker.io and docker-compose first when they are missing.
#
#   bash containers/docker-engine.sh      # exit 0 once `docker info` answers
#
# Daemon logs go to $ESPNET3_CONTAINER_BUILD_DIR (default containers/_build).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LOGS=${ESPNET3_CONTAINER_BUILD_DIR:-$HERE/_build}

die() { echo "docker-engine.sh: $*" >&2; exit 1; }
log() { echo "docker-engine.sh: $(date +%T) $*"; }

docker info >/dev/null 2>&1 && exit 0
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null; then
    log "installing docker.io and docker-compose"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq docker.io docker-compose >/dev/null \
        || die "apt-get install docker.io docker-compose failed"
fi
mkdir -p "$LOGS"
# A socket or pid file left by a daemon that died would fool the checks: trust processes.
if ! pgrep -x containerd >/dev/null; then
    log "starting containerd"
    rm -f /run/containerd/containerd.sock
    nohup containerd >"$LOGS/containerd.log" 2>&1 &
fi
for _ in $(seq 1 150); do [[ -S /run/containerd/containerd.sock ]] && break; sleep 0.2; done
pgrep -x dockerd >/dev/null || rm -f /var/run/docker.pid
log "starting dockerd"
nohup dockerd --containerd=/run/containerd/containerd.sock >"$LOGS/dockerd.log" 2>&1 &
for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && exit 0; sleep 0.2; done
die "dockerd did not come up within 30 s; see $LOGS/dockerd.log"
