"""``espnet3 cluster check CONFIG``: start the configured cluster, probe it, shut it down.

One task is sent to each worker; each reports its host, process, batch job (the id its
scheduler gives it, :func:`espnet3.parallel.schedulers.job_here`) and the image identity and package versions of :func:`espnet3.parallel.identity.process_identity`. The
workers are then compared with this process (as a run with a container does before any
work), and the cluster is shut down, cancelling its jobs.

``CONFIG`` is a YAML file with a ``parallel:`` section. A file in a recipe's ``conf/``
directory is loaded over that recipe's base config, so presets such as
``recipes/mini_an4/asr/conf/slurm.yaml`` work as they are.

Example:
    >>> main(["cluster", "check", "recipes/mini_an4/asr/conf/local.yaml"])   # doctest: +SKIP
    env local: 2 worker(s) connected
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

from espnet3.errors import Espnet3Error


def add_parser(subparsers: Any) -> None:
    """Register ``cluster check``."""
    parser = subparsers.add_parser(
        "cluster", help="check that the configured cluster starts and its workers match"
    )
    commands = parser.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    check = commands.add_parser(
        "check",
        help="start the cluster, run one task per worker, print what they report, shut down",
        description="Start the cluster of CONFIG's parallel: section, run one task on every "
        "worker, print each worker's host, job, image identity and versions, compare them "
        "with this process, then shut the cluster down.",
    )
    check.add_argument("config", metavar="CONFIG", help="YAML file with a parallel: section")
    check.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    check.set_defaults(func=_check)


def probe_worker() -> dict[str, Any]:
    """What one worker reports: where it runs and its identity (runs on the worker).

    Example:
        >>> sorted(probe_worker())[:3]
        ['dask', 'distributed', 'espnet3']
    """
    from espnet3.parallel.identity import process_identity
    from espnet3.parallel.schedulers import job_here

    return {
        **process_identity(),
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "job": job_here() or "-",
    }


def check_cluster(parallel: Any) -> list[dict[str, Any]]:
    """Start the cluster of ``parallel``, wait for all its workers, probe each once, shut down.

    Returns one report per worker, sorted by worker address.
    """
    from espnet3.parallel import ParallelConfig, get_client
    from espnet3.parallel.identity import check_worker_identities
    from espnet3.parallel.schedulers import schedulers

    # Every worker must answer, not just the few a run needs to start.
    config = ParallelConfig.from_any(parallel)
    config = ParallelConfig.from_any({**config.to_dict(), "min_workers": config.n_workers})
    if config.is_sequential:
        clusters = [env for env, scheduler in schedulers().items() if not scheduler.sequential]
        raise Espnet3Error(
            f"parallel.env is {config.env!r}: there is no cluster to check; set parallel.env "
            f"to one of {', '.join(clusters)}"
        )
    with get_client(config) as client:
        workers = sorted(client.scheduler_info()["workers"])
        futures = [
            client.submit(probe_worker, workers=[w], allow_other_workers=False, pure=False)
            for w in workers
        ]
        reports = [{"worker": w, **f.result()} for w, f in zip(workers, futures, strict=True)]
        check_worker_identities(client)
    return reports


def _check(args: argparse.Namespace) -> int:
    from espnet3.cli.recipe_config import load_recipe_config

    path = Path(args.config)
    if path.parent.name == "conf":
        config = load_recipe_config(path.parent.parent, path, args.overrides)
    else:
        from omegaconf import OmegaConf

        from espnet3.utils.config_files import load_yaml

        if not path.is_file():
            raise Espnet3Error(f"config file {str(path)!r} does not exist: check the path")
        config = OmegaConf.merge(load_yaml(path), OmegaConf.from_dotlist(args.overrides))
    reports = check_cluster(config.get("parallel"))
    env = config.parallel.env
    print(f"env {env}: {len(reports)} worker(s) connected, one task each")
    keys = ("worker", "host", "pid", "job", "image", "python", "espnet3", "dask", "torch")
    rows = [keys, *[tuple(str(r.get(k, "")) for k in keys) for r in reports]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(keys))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print("all workers match this process; cluster shut down")
    return 0
