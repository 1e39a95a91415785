#!/usr/bin/env bash
# Make a minimal Debian bookworm base image locally, for machines that reach the Debian package
# mirror but no container registry (CI). Users with registry access use a public base instead.
#
#   bash containers/debootstrap-base.sh espnet3/bookworm-base:latest
#
# Leaves an existing image alone (docker keeps it between runs; delete it to rebuild).
set -euo pipefail

TAG=${1:?usage: debootstrap-base.sh IMAGE:TAG}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() { echo "debootstrap-base.sh: $*" >&2; exit 1; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "debootstrap-base.sh: $TAG already exists"
    exit 0
fi
command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
        || die "debootstrap is missing and 'apt-get install debootstrap' failed"
}
rootfs=$(mktemp -d /var/tmp/espnet3-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap-base.sh: debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
    || die "debootstrap failed; see $rootfs.log"
rm -f "$rootfs.log"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import - "$TAG" >/dev/null || die "docker import of $TAG failed"
echo "debootstrap-base.sh: made $TAG"
