"""Each rank of slurm/dask_static_apptainer.sbatch: scheduler, client or worker of one allocation.

    python slurm/dask_static_apptainer.py tls RUN_DIR/tls          # once, before srun
    srun python slurm/dask_static_apptainer.py run --run-dir RUN_DIR --interface eth0

Roles come from dask-jobqueue's ``SLURMRunner`` (rank 0 scheduler, rank 1 client, the rest
workers). The client checks that every worker runs the same image and package versions, runs
:func:`probe` once on each worker and writes the results to RUN_DIR/results.json. Replace
:func:`probe_each_worker` by your own work; the rest is the cluster plumbing.

The scheduler listens beyond loopback, so every rank uses TLS with a certificate the ``tls``
step made for this allocation only (files readable by the job's user only).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

CERT_FILES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}


def write_certificate(directory: Path) -> None:
    """A fresh self-signed certificate and key for this allocation, owner-only."""
    from distributed.security import Security

    from espnet3.utils.atomic import atomic_write_text

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = Security.temporary()
    old_umask = os.umask(0o077)
    try:
        atomic_write_text(directory / CERT_FILES["ca"], temporary.tls_ca_file)
        atomic_write_text(directory / CERT_FILES["cert"], temporary.tls_client_cert)
        atomic_write_text(directory / CERT_FILES["key"], temporary.tls_client_key)
    finally:
        os.umask(old_umask)


def security(directory: Path):
    """The TLS settings of every role, from the files :func:`write_certificate` made."""
    from distributed.security import Security

    ca, cert, key = (str(directory / CERT_FILES[k]) for k in ("ca", "cert", "key"))
    return Security(
        require_encryption=True,
        tls_ca_file=ca,
        **{f"tls_{role}_{kind}": path for role in ("client", "scheduler", "worker")
           for kind, path in (("cert", cert), ("key", key))},
    )  # fmt: skip


def probe(index: int) -> dict:
    """Where an item ran: host, SLURM job and rank, and the image identity."""
    return {
        "index": index,
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_procid": os.environ.get("SLURM_PROCID"),
        "image": os.environ.get("ESPNET3_IMAGE_ID"),
        "container": os.environ.get("APPTAINER_CONTAINER"),
    }


def probe_each_worker(client) -> list[dict]:
    """:func:`probe` once on every connected worker (pinned), in worker address order."""
    workers = sorted(client.scheduler_info()["workers"])
    return client.gather(
        [client.submit(probe, i, workers=[w], pure=False) for i, w in enumerate(workers)]
    )


def run(run_dir: Path, interface: str) -> int:
    from dask_jobqueue.slurm import SLURMRunner
    from distributed import Client
    from distributed.core import rpc

    from espnet3.parallel.identity import check_worker_identities, process_identity
    from espnet3.utils.atomic import atomic_write_json

    tls = security(run_dir / "tls")

    class Runner(SLURMRunner):
        async def before_client_start(self) -> None:
            # The runner's own connection to the scheduler must speak TLS too.
            self.scheduler_comm = rpc(
                self.scheduler_address, connection_args=tls.get_connection_args("client")
            )

    options = {"interface": interface, "security": tls, "protocol": "tls://"}
    try:
        with (
            Runner(
                scheduler_file=str(run_dir / "scheduler-{job_id}.json"),
                scheduler_options={**options, "dashboard": False},
                worker_options={"interface": interface, "security": tls, "nthreads": 1},
            ) as runner,
            Client(runner, security=tls) as client,
        ):
            client.wait_for_workers(runner.n_workers)
            workers = check_worker_identities(client)
            results = probe_each_worker(client)
            atomic_write_json(
                run_dir / "results.json",
                {"parent": process_identity(), "workers": workers, "results": results},
            )
            print(json.dumps(results), flush=True)
    except KeyboardInterrupt:
        # SLURMRunner stops scheduler and worker ranks with SIGINT once the client is done.
        return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tls").add_argument("directory", type=Path)
    runner = sub.add_parser("run")
    runner.add_argument("--run-dir", type=Path, required=True)
    runner.add_argument("--interface", default="eth0")
    args = parser.parse_args(argv)
    if args.command == "tls":
        write_certificate(args.directory)
        return 0
    return run(args.run_dir, args.interface)


if __name__ == "__main__":
    sys.exit(main())
