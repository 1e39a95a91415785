#!/usr/bin/env bash
#SBATCH -J espnet3-shards
#SBATCH -p cpu
#SBATCH -A speech
#SBATCH -n 1
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH -t 04:00:00
#SBATCH --array=0-11%3
#SBATCH --output=/runs/logs/array-ab12-0_%a.log
set -euo pipefail
task=${SLURM_ARRAY_TASK_ID}
module load ffmpeg
spec=$(sed -n "$((task + 1))p" /runs/specs/array-ab12-0.list)
exec /opt/espnet3/bin/python -m espnet3.runner.shard "$spec"
