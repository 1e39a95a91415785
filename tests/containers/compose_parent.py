"""The parent process of the compose tests: runs inside the espnet3 SIF on the controller.

    apptainer exec -B /etc/slurm -B /run/munge -B /shared -B /repo /shared/espnet3.sif \
        python /repo/tests/containers/compose_parent.py IMAGE

Starts 2 SLURM worker jobs in IMAGE (``auto`` = this process's own SIF) through get_client,
which checks the workers' identity; then maps the probe of slurm/dask_static_apptainer.py
once on each worker (pinned) and over a few items (parallel_map). Prints one JSON line:
``{"parent": identity, "pinned": [...], "mapped": [...]}``, or ``{"error": message}`` and
exits 3 when get_client refuses the workers.
"""

from __future__ import annotations

import json
import sys

sys.path.insert(0, "/repo/slurm")
import dask_static_apptainer  # noqa: E402  (the probe both container tests share)

from espnet3.errors import Espnet3Error  # noqa: E402
from espnet3.parallel import get_client, parallel_map  # noqa: E402
from espnet3.parallel.identity import process_identity  # noqa: E402

probe = dask_static_apptainer.probe


def main(image: str) -> int:
    config = {
        "env": "slurm",
        "n_workers": 2,
        "min_workers": 2,
        "startup_timeout": 180,
        "log_dir": "/shared/run/logs",
        "options": {
            "cores": 1,
            "processes": 1,
            "memory": "500MB",
            "walltime": "00:10:00",
            "interface": "eth0",
            # A whole node per job: one worker on c1, one on c2.
            "job_extra_directives": ["--exclusive"],
        },
        # Workers import the probe's module as the parent does: /repo/slurm on their path.
        "container": {
            "runtime": "apptainer",
            "image": image,
            "binds": ["/shared", "/repo"],
            "env": {"PYTHONPATH": "/repo/slurm"},
        },
    }
    try:
        with get_client(config) as client:
            pinned = dask_static_apptainer.probe_each_worker(client)
            mapped = parallel_map(probe, range(6), client)
    except Espnet3Error as err:
        print(json.dumps({"error": str(err)}), flush=True)
        return 3
    print(json.dumps({"parent": process_identity(), "pinned": pinned, "mapped": mapped}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "auto"))
