"""What a GPU worker would run, seen from inside an espnet3 image; prints one JSON line.

    docker run --rm -i IMAGE python - < tests/containers/image_probe.py
    apptainer exec IMAGE.sif python - < tests/containers/image_probe.py

Reports torch's CUDA build, the image identity this process sees and, inside a SIF, the
script of a SLURM worker job configured with ``container: {image: auto, gpus: true}``: the
job the parent would submit, rendered by dask-jobqueue without submitting it.
"""

from __future__ import annotations

import json
import os

import torch

from espnet3.parallel import ParallelConfig
from espnet3.parallel.identity import process_identity

report = {
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "identity": process_identity(),
    "container": os.environ.get("APPTAINER_CONTAINER"),
}
if report["container"]:
    config = ParallelConfig.from_any(
        {
            "env": "slurm",
            "options": {"cores": 4, "memory": "16GB", "job_extra_directives": ["--gres=gpu:1"]},
            "container": {"image": "auto", "gpus": True},
        }
    )
    python = config.scheduler.python_command(config)
    report["worker_python"] = python
    report["job_script"] = config.scheduler.shard_job(config, python=python).job_script()
print(json.dumps(report))
