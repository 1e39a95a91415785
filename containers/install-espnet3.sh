#!/bin/sh
# Install espnet3 from the source tree SRC into the image's Python, keeping the torch the image
# already has (a CUDA build in the PyTorch base, the local CPU wheel in the CPU image, the one
# an earlier `--torch` run installed).
#
#   sh install-espnet3.sh SRC EXTRAS       # e.g. sh install-espnet3.sh /tmp/espnet3 audio
#   sh install-espnet3.sh --torch SPEC     # only torch, from the package index (e.g. PyPI's
#                                          # CUDA build: torch==2.13.0); nothing if SPEC is empty
#
# /tmp/ca/*.pem|*.crt, when present, are trusted in addition to the system store (sites whose
# HTTPS goes through a TLS-intercepting proxy). /tmp/wheels/*.whl are installed first; when
# /tmp/wheels/.offline exists (build.sh --wheelhouse) every package comes from /tmp/wheels.
set -eu
if [ "$1" = --torch ]; then
    torch=${2:-}
    [ -n "$torch" ] || exit 0
else
    src=$1 extras=${2:-} torch=""
fi

extra_ca=$(find /tmp/ca -maxdepth 1 -type f \( -name '*.pem' -o -name '*.crt' \) 2>/dev/null || true)
if [ -n "$extra_ca" ]; then
    system=/etc/ssl/certs/ca-certificates.crt
    [ -f "$system" ] || system=$(python -c 'import pip._vendor.certifi as c; print(c.where())')
    cat "$system" $extra_ca >/tmp/ca-bundle.pem
    export PIP_CERT=/tmp/ca-bundle.pem SSL_CERT_FILE=/tmp/ca-bundle.pem
fi

pip="python -m pip install --no-cache-dir --disable-pip-version-check"
if [ -n "$torch" ]; then
    $pip "$torch"
    rm -f /tmp/ca-bundle.pem
    exit 0
fi
if [ -f /tmp/wheels/.offline ]; then
    pip="$pip --no-index --find-links /tmp/wheels"
else
    wheels=$(find /tmp/wheels -maxdepth 1 -name '*.whl' 2>/dev/null || true)
    [ -z "$wheels" ] || $pip $wheels
fi

# Pin torch to the installed build: an unpinned `torch>=...` (or torchaudio) could replace the
# base image's CUDA build by another one.
python - >/tmp/pins.txt <<'PY'
import importlib.metadata as md
try:
    print("torch==" + md.version("torch").split("+")[0])
except md.PackageNotFoundError:
    pass
PY
target=$src
# Offline, espnet3 itself is one of the wheels (building it would need the build backend).
[ ! -f /tmp/wheels/.offline ] || target=espnet3
[ -z "$extras" ] || target="$target[$extras]"
$pip -c /tmp/pins.txt "$target"
python -c 'import espnet3, dask, distributed, dask_jobqueue, torch'
rm -f /tmp/ca-bundle.pem /tmp/pins.txt
