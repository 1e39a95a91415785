#!/usr/bin/env bash
set -euo pipefail
task=$1
module load ffmpeg
spec=$(sed -n "$((task + 1))p" /runs/specs/array-ab12-0.list)
exec /opt/espnet3/bin/python -m espnet3.runner.shard "$spec"
