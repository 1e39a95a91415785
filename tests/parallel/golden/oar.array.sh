#!/usr/bin/env bash
#OAR -n espnet3-shards
#OAR -q default
#OAR --project speech
#OAR -l /nodes=1/core=2,walltime=04:00:00
#OAR --array 12
#OAR -O /runs/logs/array-ab12-0_%jobid%.oar
#OAR -E /runs/logs/array-ab12-0_%jobid%.oar
set -euo pipefail
task=$(( ${OAR_ARRAY_INDEX} - 1 ))
exec >>/runs/logs/array-ab12-0_"$task".log 2>&1
module load ffmpeg
spec=$(sed -n "$((task + 1))p" /runs/specs/array-ab12-0.list)
exec /opt/espnet3/bin/python -m espnet3.runner.shard "$spec"
