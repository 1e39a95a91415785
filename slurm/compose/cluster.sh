#!/usr/bin/env bash
# A docker-compose SLURM cluster (ctl + c1 + c2, munge, Apptainer) running the espnet3 SIF.
#
#   bash slurm/compose/cluster.sh build    # base (debootstrap), node image, espnet3 CPU image + SIF
#   bash slurm/compose/cluster.sh node-image   # base and node image only (Apptainer, SLURM)
#   bash slurm/compose/cluster.sh up       # start, copy the SIF to the shared volume, wait for idle nodes
#   bash slurm/compose/cluster.sh status   # exit 0 only when up and sinfo on ctl shows idle nodes
#   bash slurm/compose/cluster.sh test     # the compose-marked tests (tests/containers)
#   bash slurm/compose/cluster.sh exec NODE CMD...   # run CMD on a node (ctl, c1, c2)
#   bash slurm/compose/cluster.sh down     # stop and remove containers and volumes
#   bash slurm/compose/cluster.sh ci       # all of it, from a fresh machine; always tears down
#
# Starts the docker engine (containers/docker-engine.sh) when it is not running. No
# registry is needed: the base image is made with debootstrap from the Debian mirror. The
# cluster's network is internal (no route out); tests reach it only through `docker exec`.
# Any failure exits non-zero with a message saying what failed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$REPO/containers/_build
PROJECT=espnet3ci
BASE_IMAGE=espnet3/bookworm-base:latest
NODE_IMAGE=espnet3/compose-node:latest
TORCH_WHEEL=${ESPNET3_TORCH_WHEEL:-$(ls /opt/wheels/torch-2.13.0+cpu-cp311-*.whl 2>/dev/null | head -n1)}
SIF_NAME=espnet3-0.1.0-cpu
IDLE_TIMEOUT=${ESPNET3_COMPOSE_IDLE_TIMEOUT:-120}
# The tests run on this host and need pytest and espnet3: nox's shared environment
# (`nox -s compose` makes it and sets ESPNET3_PYTHON).
PYTHON=${ESPNET3_PYTHON:-$REPO/.nox/espnet3/bin/python}

export ESPNET3_BUILD_DIR=$BUILD ESPNET3_REPO_DIR=$REPO ESPNET3_NODE_IMAGE=$NODE_IMAGE

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}
log() { echo "cluster.sh: $(date +%T) $*"; }

compose() { docker-compose -p "$PROJECT" -f "$HERE/docker-compose.yml" "$@"; }
# `docker exec` rather than `docker-compose exec`: the same, without compose's seconds of startup.
on() {
    local node=$1
    shift
    docker exec "${PROJECT}_${node}_1" "$@"
}

ensure_docker() { bash "$REPO/containers/docker-engine.sh" || die "the docker engine did not start"; }

base_image() {
    ensure_docker
    mkdir -p "$BUILD"
    log "base image $BASE_IMAGE"
    bash "$REPO/containers/debootstrap-base.sh" "$BASE_IMAGE"
}

node_image() {
    DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$NODE_IMAGE" \
        -f "$HERE/node.Dockerfile" "$HERE" >"$BUILD/node-build.log" 2>&1
}

build() {
    [[ -f $TORCH_WHEEL ]] || die "no local torch wheel (/opt/wheels/torch-2.13.0+cpu-cp311-*.whl): set ESPNET3_TORCH_WHEEL"
    base_image
    # The node image and the espnet3 image only share the base: build them side by side.
    log "node image $NODE_IMAGE and espnet3 CPU image (logs in $BUILD/*-build.log)"
    node_image &
    local node_pid=$!
    # The build's pip goes through this machine's HTTPS proxy (--host-ca); wheels are resolved
    # on this host (its index and cache) and installed offline in the build.
    local image=(--cpu --base "$BASE_IMAGE" --torch-wheel "$TORCH_WHEEL" --wheelhouse --host-ca)
    bash "$REPO/containers/build.sh" "${image[@]}" --no-sif >"$BUILD/espnet3-build.log" 2>&1 || {
        kill "$node_pid" 2>/dev/null || true
        die "espnet3 image build failed: $(tail -n 5 "$BUILD/espnet3-build.log")"
    }
    wait "$node_pid" || die "docker build of $NODE_IMAGE failed: $(tail -n 5 "$BUILD/node-build.log")"
    log "SIF (apptainer build in $NODE_IMAGE)"
    # Light compression: the SIF is built on every run and read over a local volume.
    ESPNET3_MKSQUASHFS_ARGS=${ESPNET3_MKSQUASHFS_ARGS:--comp gzip -Xcompression-level 1} bash "$REPO/containers/build.sh" "${image[@]}" --sif-only --keep-tar --apptainer-image "$NODE_IMAGE"
    [[ -f $BUILD/$SIF_NAME.sif ]] || die "build.sh made no $BUILD/$SIF_NAME.sif"
    mismatch_image
    rm -f "$BUILD/$SIF_NAME.tar"
}

mismatch_image() {
    # The same image under another identity: what a stale image on a node looks like. Built
    # from the saved docker archive like the SIF (unpacking a SIF inside a node container needs
    # device nodes Docker does not allow there).
    log "mismatched-identity SIF"
    mkdir -p "$BUILD/.apptainer-tmp"
    docker run --rm --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
        --security-opt apparmor=unconfined -e APPTAINER_TMPDIR=/build/.apptainer-tmp \
        -v "$BUILD:/build" -w /build --entrypoint apptainer "$NODE_IMAGE" build -F --disable-cache \
        --mksquashfs-args "-comp gzip -Xcompression-level 1" \
        --build-arg "ARCHIVE=$SIF_NAME.tar" --build-arg "ESPNET3_IMAGE_ID=espnet3-forced-mismatch" \
        espnet3-mismatch.sif espnet3.def >"$BUILD/mismatch-build.log" 2>&1 \
        || die "apptainer build of the mismatched SIF failed: $(tail -n 5 "$BUILD/mismatch-build.log")"
    rm -rf "$BUILD/.apptainer-tmp"
}

idle_nodes() { on ctl sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle" {print $1}' | sort -u; }

up() {
    ensure_docker
    [[ -f $BUILD/$SIF_NAME.sif && -f $BUILD/espnet3-mismatch.sif ]] \
        || die "no $BUILD/$SIF_NAME.sif or espnet3-mismatch.sif: run '$0 build' first"
    log "starting ctl, c1, c2"
    compose up -d >/dev/null 2>&1 || { compose up -d; die "docker-compose up failed"; }
    on ctl cp "/build/$SIF_NAME.sif" /shared/espnet3.sif
    on ctl cp "/build/$SIF_NAME.identity" /shared/espnet3.identity
    on ctl cp /build/espnet3-mismatch.sif /shared/espnet3-mismatch.sif
    on ctl mkdir -p /shared/run
    local waited=0
    until [[ $(idle_nodes | wc -l) -ge 2 ]]; do
        ((waited++ < IDLE_TIMEOUT)) || {
            on ctl sinfo || true
            die "nodes not idle after ${IDLE_TIMEOUT}s; see 'docker-compose -p $PROJECT logs'"
        }
        sleep 1
    done
    log "up: $(idle_nodes | tr '\n' ' ')idle"
}

status() {
    docker info >/dev/null 2>&1 || return 1
    [[ $(docker inspect -f '{{.State.Running}}' "${PROJECT}_ctl_1" 2>/dev/null) == true ]] || return 1
    [[ -n $(idle_nodes) ]]
}

run_tests() {
    status || die "the cluster is not up: run '$0 up' first"
    "$PYTHON" -c 'import pytest, espnet3' 2>/dev/null \
        || die "no Python with pytest and espnet3 at $PYTHON: run 'nox -s compose' (it makes one) or set ESPNET3_PYTHON"
    log "running tests/containers"
    (cd "$REPO" && ESPNET3_REQUIRE_COMPOSE=1 "$PYTHON" -m pytest tests/containers -m compose -q \
        -p no:cacheprovider) || die "compose tests failed"
}

down() {
    docker info >/dev/null 2>&1 || return 0
    compose down -v --timeout 5 >/dev/null 2>&1 || die "docker-compose down failed"
    log "down"
}

ci() {
    # Global, not local: the EXIT trap runs after this function has returned.
    CI_START=$SECONDS
    ensure_docker
    trap 'down || true; log "ci took $((SECONDS - CI_START)) s"' EXIT
    down
    build
    log "build done after $((SECONDS - CI_START)) s"
    up
    run_tests
    log "ci passed"
}

case ${1:-} in
    build) build ;;
    node-image)
        base_image
        node_image || die "docker build of $NODE_IMAGE failed: $(tail -n 5 "$BUILD/node-build.log")"
        ;;
    up) up ;;
    status) status ;;
    test) run_tests ;;
    exec)
        shift
        on "$@"
        ;;
    down) down ;;
    ci) ci ;;
    *) die "usage: $0 build|node-image|up|status|test|exec NODE CMD...|down|ci" ;;
esac
