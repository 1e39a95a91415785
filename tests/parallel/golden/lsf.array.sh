#!/usr/bin/env bash
#BSUB -q cpu
#BSUB -P "speech"
#BSUB -n 2
#BSUB -R "span[hosts=1]"
#BSUB -M 4000000
#BSUB -W 04:00
#BSUB -J "espnet3-shards[1-12]%3"
#BSUB -o /runs/logs/array-ab12-0_%I.lsf
set -euo pipefail
task=$(( ${LSB_JOBINDEX} - 1 ))
exec >>/runs/logs/array-ab12-0_"$task".log 2>&1
module load ffmpeg
spec=$(sed -n "$((task + 1))p" /runs/specs/array-ab12-0.list)
exec /opt/espnet3/bin/python -m espnet3.runner.shard "$spec"
