"""Clusters of batch-scheduler jobs (SLURM, PBS, SGE, LSF, HTCondor, OAR, Moab).

Each worker is one job submitted by dask-jobqueue. By default the scheduler uses TLS with a
temporary certificate whose worker half is written, readable by the owner only, into the run's
log directory, since jobs on other hosts must reach a scheduler that is no longer on loopback.

Example (needs a batch scheduler)::

    cfg = ParallelConfig.from_any({"env": "slurm", "n_workers": 2,
                                   "options": {"cores": 1, "memory": "1GB"}})
    with start_jobqueue_cluster(cfg, cluster_kind("slurm")) as cluster:
        ...
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from espnet3.parallel.clusters import ClusterKind, _tls_options, wants_tls


def start_jobqueue_cluster(config: Any, kind: ClusterKind) -> Any:
    """Build the dask-jobqueue cluster of ``config`` and submit ``config.n_workers`` jobs."""
    options = dict(config.options)
    scheduler_options = dict(options.pop("scheduler_options", None) or {})
    # The dashboard shows task code and data: keep it off, or on loopback when asked for.
    scheduler_options.setdefault("dashboard", False)
    scheduler_options.setdefault("dashboard_address", "127.0.0.1:0")
    if "interface" in options and "interface" not in scheduler_options:
        scheduler_options["interface"] = options["interface"]
    log_dir = Path(config.log_dir or options.get("log_directory") or _default_log_dir())
    log_dir.mkdir(parents=True, exist_ok=True)
    options.setdefault("log_directory", str(log_dir))
    # Jobs run on other hosts, so the scheduler listens beyond loopback: TLS unless refused.
    if wants_tls(config, listen_host=None):
        options.update(_tls_options())
        secrets = log_dir / "tls"
        secrets.mkdir(mode=0o700, exist_ok=True)
        options.setdefault("shared_temp_directory", str(secrets))
    cluster = kind.load()(scheduler_options=scheduler_options, **options)
    cluster.scale(config.n_workers)
    return cluster


def _default_log_dir() -> str:
    return tempfile.mkdtemp(prefix="espnet3-jobs-", dir=os.getcwd())
