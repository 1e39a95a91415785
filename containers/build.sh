#!/usr/bin/env bash
# Build the espnet3 docker image, then the Apptainer SIF from it, in one command.
#
#   bash containers/build.sh                        # GPU image (public CUDA PyTorch base) + SIF
#   bash containers/build.sh --debian --base espnet3/bookworm-base:latest --host-ca
#                                                   # GPU image without a registry
#   bash containers/build.sh --cpu --base espnet3/bookworm-base:latest \
#        --torch-wheel /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
#
# Options:
#   --debian              GPU image on a Debian base (containers/Dockerfile.debian) with PyPI's
#                         CUDA torch wheel, at the version constraints.txt pins
#   --cpu                 CPU image on a Debian base (containers/Dockerfile.debian)
#   --base IMAGE          BASE_IMAGE build argument (default: the Dockerfile's public base)
#   --tag TAG             docker tag (default espnet3:VERSION-gpu / espnet3:VERSION-cpu)
#   --extras LIST         espnet3 extras to install (default: the Dockerfile's)
#   --ca-bundle FILE      extra PEM bundle to trust during the build (TLS-intercepting proxies)
#   --host-ca             trust the bundle this host's pip trusts (PIP_CERT, SSL_CERT_FILE,
#                         pip's global.cert, else /etc/ssl/certs/ca-certificates.crt)
#   --torch-wheel FILE    a local torch wheel to install instead of downloading one
#   --wheelhouse          resolve every wheel on this host (its pip index, mirror and cache;
#                         constraints.txt applies) and install offline inside the build
#   --image-id ID         identity to record instead of espnet3-VERSION-REVISION-CREATED
#   --no-sif              stop after the docker image
#   --sif-only            only the SIF, from the docker image an earlier --no-sif run built
#   --apptainer-image IMG run `apptainer build` in this docker image (when the host has none)
#   --keep-tar            keep NAME.tar (docker save) after the SIF is built
#
# Outputs in containers/_build/: NAME.sif and NAME.identity (the identity as shell
# assignments), NAME = the tag with ':' and '/' replaced by '-'; NAME.tar with --keep-tar.
# The SIF step needs about three times the docker image's size free in the build directory
# (the archive, Apptainer's unpacked copy and the SIF; measured in containers/README.md):
# build.sh checks that first. ESPNET3_CONTAINER_BUILD_DIR moves all of it to another disk.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=${ESPNET3_CONTAINER_BUILD_DIR:-$HERE/_build}

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*"; }

variant=gpu debian=0 base="" tag="" extras="" ca_bundle="" torch_wheel="" image_id="" sif=1 docker=1
wheelhouse=0 keep_tar=0
apptainer_image=""
while (($#)); do
    case $1 in
        --cpu) variant=cpu debian=1 ;;
        --debian) debian=1 ;;
        --base) base=$2; shift ;;
        --tag) tag=$2; shift ;;
        --extras) extras=$2; shift ;;
        --ca-bundle) ca_bundle=$2; shift ;;
        --host-ca)
            ca_bundle=${PIP_CERT:-${SSL_CERT_FILE:-$(python3 -m pip config get global.cert 2>/dev/null || true)}}
            [[ -n $ca_bundle || ! -f /etc/ssl/certs/ca-certificates.crt ]] \
                || ca_bundle=/etc/ssl/certs/ca-certificates.crt
            ;;
        --torch-wheel) torch_wheel=$2; shift ;;
        --image-id) image_id=$2; shift ;;
        --wheelhouse) wheelhouse=1 ;;
        --no-sif) sif=0 ;;
        --sif-only) docker=0 ;;
        --apptainer-image) apptainer_image=$2; shift ;;
        --keep-tar) keep_tar=1 ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml")
[[ -n $version ]] || die "no version in $REPO/pyproject.toml"
revision=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown ]] && [[ -n $(git -C "$REPO" status --porcelain -- espnet3 pyproject.toml) ]]; then
    revision=$revision-dirty
fi
created=$(date -u +%Y%m%dT%H%M%SZ)
image_id=${image_id:-espnet3-$version-$revision-$created}
tag=${tag:-espnet3:$version-$variant}
name=$(echo "$tag" | tr ':/' '--')
# The torch layer of the Debian build, tagged so that dropping the build's stage keeps it.
torch_layer=${tag%:*}-torch-layer:${tag##*:}
dockerfile=$HERE/Dockerfile
((debian)) && dockerfile=$HERE/Dockerfile.debian
# The Debian GPU image takes torch from the package index: PyPI's default build is the CUDA one.
torch=""
if ((debian)) && [[ $variant == gpu ]]; then
    torch=$(sed -n 's/^\(torch==[^ ]*\).*/\1/p' "$REPO/constraints.txt")
    [[ -n $torch ]] || die "no torch==VERSION pin in $REPO/constraints.txt"
    ((!wheelhouse)) || die "--wheelhouse resolves this host's torch; the GPU image takes PyPI's: drop one"
fi

build_image() {
    # A small, explicit build context: the package sources, the extra CA and local wheels.
    local context=$BUILD/context-$name
    rm -rf "$context"
    mkdir -p "$context/src" "$context/ca" "$context/wheels"
    cp -r "$REPO/pyproject.toml" "$REPO/espnet3" "$context/src/"
    [[ -f $REPO/README.md ]] && cp "$REPO/README.md" "$context/src/"
    find "$context/src" -name __pycache__ -prune -exec rm -rf {} +
    cp "$HERE/install-espnet3.sh" "$context/"
    if [[ -n $ca_bundle ]]; then
        [[ -f $ca_bundle ]] || die "--ca-bundle $ca_bundle does not exist"
        cp "$ca_bundle" "$context/ca/extra.pem"
    fi
    if [[ -n $torch_wheel ]]; then
        [[ -f $torch_wheel ]] || die "--torch-wheel $torch_wheel does not exist"
        cp "$torch_wheel" "$context/wheels/"
    fi
    if ((wheelhouse)); then
        # The image's Python must match this host's (cp311 wheels for bookworm's 3.11).
        log "resolving wheels on this host"
        python3 -m pip wheel -q --wheel-dir "$context/wheels" -c "$REPO/constraints.txt" \
            "$context/src${extras:+[$extras]}" >"$BUILD/wheelhouse-$name.log" 2>&1 \
            || die "pip wheel failed; see $BUILD/wheelhouse-$name.log"
        touch "$context/wheels/.offline"
    fi
    local args=(--build-arg "ESPNET3_VERSION=$version" --build-arg "ESPNET3_REVISION=$revision"
                --build-arg "ESPNET3_CREATED=$created" --build-arg "ESPNET3_IMAGE_ID=$image_id")
    [[ -n $base ]] && args+=(--build-arg "BASE_IMAGE=$base")
    [[ -n $extras ]] && args+=(--build-arg "EXTRAS=$extras")
    [[ -n $torch ]] && args+=(--build-arg "TORCH=$torch")
    log "docker build $tag ($variant${torch:+, $torch from the package index}, identity $image_id)"
    local previous
    previous=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    DOCKER_BUILDKIT=0 docker build -f "$dockerfile" -t "$tag" "${args[@]}" "$context" \
        >"$BUILD/docker-build-$name.log" 2>&1 \
        || die "docker build of $tag failed: $(tail -n 3 "$BUILD/docker-build-$name.log") (all of it in $BUILD/docker-build-$name.log)"
    rm -rf "$context"
    drop_build_stages
    # The image this tag named before (every build has a new identity, so a new image) would
    # stay behind untagged, several GB each time; the layers a rebuild reuses are kept.
    if [[ -n $previous && $previous != $(docker image inspect -f '{{.Id}}' "$tag") ]]; then
        docker rmi "$previous" >/dev/null 2>&1 || log "kept the previous $tag ($previous): in use"
    fi
    cat >"$BUILD/$name.identity" <<IDENT
ESPNET3_VERSION=$version
ESPNET3_REVISION=$revision
ESPNET3_CREATED=$created
ESPNET3_IMAGE_ID=$image_id
IDENT
}

drop_build_stages() {
    # The classic builder keeps a multi-stage build's venv stage as an untagged image (the final
    # stage copies only /opt/venv out of it): 1.7 GB (CPU) or 0.5 GB (GPU) more disk on every
    # build, for good. This build's torch layer is tagged, so that a rebuild does not download
    # CUDA torch again; then the stages of this and of earlier builds go.
    local stage layer id
    stage=$(docker images -q --filter dangling=true --filter "label=org.espnet3.stage-of=$image_id")
    if [[ -n $stage ]]; then
        layer=$(docker history --no-trunc --format '{{.ID}} {{.CreatedBy}}' "$stage" \
            | awk '/install-espnet3\.sh --torch/ {print $1; exit}')
        [[ -z $layer || $layer == "<missing>" ]] || docker tag "$layer" "$torch_layer"
    fi
    for id in $(docker images -q --filter dangling=true); do
        docker history --no-trunc --format '{{.CreatedBy}}' "$id" | grep -q 'install-espnet3\.sh' \
            || continue
        docker rmi "$id" >/dev/null 2>&1 || log "kept the untagged build stage $id: in use"
    done
}

gb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1e9}'; }

check_free_space() {
    # Measured: 2.7 times the image's size at the peak (containers/README.md).
    local size need avail
    size=$(docker image inspect -f '{{.Size}}' "$tag") || die "no docker image $tag"
    need=$((size * 3))
    avail=$(df -P -B1 "$BUILD" | awk 'NR == 2 {print $4}')
    ((avail >= need)) || die "the SIF of $tag ($(gb "$size") GB) needs about $(gb "$need") GB free in $BUILD; there are $(gb "$avail") GB. Free space on that disk (old SIFs and archives in $BUILD; 'docker image prune') or set ESPNET3_CONTAINER_BUILD_DIR to a directory on a larger one"
}

mkdir -p "$BUILD"
if ((docker)); then
    build_image
else
    [[ -f $BUILD/$name.identity ]] || die "--sif-only: no $BUILD/$name.identity; build the image first"
    # shellcheck disable=SC1090
    source "$BUILD/$name.identity"
    version=$ESPNET3_VERSION revision=$ESPNET3_REVISION created=$ESPNET3_CREATED
    image_id=$ESPNET3_IMAGE_ID
fi
((sif)) || { log "built $tag"; exit 0; }

# Apptainer's unpacked copy goes to the build directory too (not to /tmp, nor inside the
# builder container's own layer), so the check below covers all of it. What a killed earlier
# run left of this step is not counted as taken.
tmp=.apptainer-tmp
rm -rf "${BUILD:?}/$tmp" "$BUILD/$name.tar"
check_free_space
mkdir -p "$BUILD/$tmp"
trap 'rm -rf "${BUILD:?}/$tmp"; ((keep_tar)) || rm -f "$BUILD/$name.tar"' EXIT
log "docker save $tag -> $BUILD/$name.tar"
docker save -o "$BUILD/$name.tar" "$tag" || die "docker save $tag failed"
cp "$HERE/espnet3.def" "$BUILD/espnet3.def"
# ESPNET3_MKSQUASHFS_ARGS, e.g. "-comp gzip -Xcompression-level 1": faster, larger SIF.
build_args=(--disable-cache ${ESPNET3_MKSQUASHFS_ARGS:+--mksquashfs-args "$ESPNET3_MKSQUASHFS_ARGS"})
build_args+=(--build-arg "ARCHIVE=$name.tar" --build-arg "ESPNET3_VERSION=$version"
            --build-arg "ESPNET3_REVISION=$revision" --build-arg "ESPNET3_CREATED=$created"
            --build-arg "ESPNET3_IMAGE_ID=$image_id")
log "apptainer build $BUILD/$name.sif"
if [[ -z $apptainer_image ]]; then
    command -v apptainer >/dev/null || die "no apptainer here: install it or pass --apptainer-image"
    (cd "$BUILD" && APPTAINER_TMPDIR=$BUILD/$tmp apptainer build -F "${build_args[@]}" "$name.sif" espnet3.def) \
        || die "apptainer build of $name.sif failed"
else
    docker run --rm --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        -e APPTAINER_TMPDIR=/build/$tmp -v "$BUILD:/build" -w /build --entrypoint apptainer "$apptainer_image" \
        build -F "${build_args[@]}" "$name.sif" espnet3.def >/dev/null \
        || die "apptainer build of $name.sif in $apptainer_image failed"
fi
log "built $tag and $BUILD/$name.sif (identity $image_id)"
