"""espnet3's Dask defaults reach real worker processes, and the user's own settings win."""

from __future__ import annotations

import os
import subprocess
import sys

from espnet3.parallel import get_client
from espnet3.parallel.housekeeping import MMAP_THRESHOLD, worker_exports


def worker_settings():
    import dask

    return (
        os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        dask.config.get("distributed.worker.profile.enabled"),
        os.environ.get("OMP_NUM_THREADS"),
    )


def test_local_workers_get_the_allocator_threshold_and_no_profiler():
    with get_client({"env": "local", "n_workers": 1}) as client:
        [settings] = client.run(worker_settings).values()
    # OMP_NUM_THREADS=1: Dask pins each single-threaded worker's libraries to one thread.
    assert settings == (str(MMAP_THRESHOLD), False, "1")


def test_starting_local_workers_leaves_this_process_environment_alone(monkeypatch):
    """Dask's nanny writes the workers' variables into the parent; later children inherit them."""
    for name in ("OMP_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    before = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_")}
    with get_client({"env": "local", "n_workers": 1}):
        during = {name: os.environ.get(name) for name in before}
    assert during == before


def test_batch_job_workers_get_the_same_settings_as_exports():
    assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in worker_exports()
    assert f"export MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}" in worker_exports()


def test_the_users_dask_config_wins():
    code = (
        "import dask; from espnet3.parallel.housekeeping import apply_defaults, worker_exports; "
        "apply_defaults(); print(dask.config.get('distributed.worker.profile.enabled')); "
        "print(worker_exports()[0])"
    )
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "True"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "export", "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=True"]
