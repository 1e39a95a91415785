#!/usr/bin/env bash
#$ -N espnet3-shards
#$ -q cpu.q
#$ -P speech
#$ -l h_rt=04:00:00
#$ -cwd
#$ -j y
#$ -o /runs/logs/
#$ -t 1-12
#$ -tc 3
set -euo pipefail
task=$(( ${SGE_TASK_ID} - 1 ))
exec >>/runs/logs/array-ab12-0_"$task".log 2>&1
module load ffmpeg
spec=$(sed -n "$((task + 1))p" /runs/specs/array-ab12-0.list)
exec /opt/espnet3/bin/python -m espnet3.runner.shard "$spec"
