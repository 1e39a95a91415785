#!/usr/bin/env bash
#PBS -N espnet3-shards
#PBS -q cpu
#PBS -A speech
#PBS -l select=1:ncpus=2:mem=3815MB
#PBS -l walltime=04:00:00
#PBS -j oe
#PBS -o /runs/logs/
#PBS -t 0-11%3
set -euo pipefail
task=${PBS_ARRAYID}
exec >>/runs/logs/array-ab12-0_"$task".log 2>&1
module load ffmpeg
spec=$(sed -n "$((task + 1))p" /runs/specs/array-ab12-0.list)
exec /opt/espnet3/bin/python -m espnet3.runner.shard "$spec"
