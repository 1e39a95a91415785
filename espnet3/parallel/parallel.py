"""Upstream ESPnet3's import path of the parallel API (one implementation, in this package).

``build_local_gpu_cluster`` is upstream's name for a client on ``env: local_gpu`` (one worker
per GPU, needs ``dask_cuda``); ``DictReturnWorkerPlugin`` is the worker plugin that builds a
``setup_fn`` environment once per worker; :func:`wrap_func_with_worker_env` gives a function
for ``client.map`` that environment by parameter name. ``parallel_config`` reads and sets the
process-wide config (:func:`get_parallel_config` / :func:`set_parallel`), as upstream's module
global did.

Example:
    >>> from espnet3.parallel.parallel import get_client, parallel_map, set_parallel
    >>> parallel_map(abs, [-1, -2])
    [1, 2]
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Mapping
from typing import Any

from espnet3.parallel.client import build_client, get_client
from espnet3.parallel.context import get_parallel_config, set_parallel
from espnet3.parallel.mapping import parallel_for, parallel_map
from espnet3.parallel.worker_env import wrap_func_with_worker_env
from espnet3.parallel.worker_plugin import SetupPlugin as DictReturnWorkerPlugin

#: Upstream's flag for "Dask is installed" (it always is here: a dependency).
_DASK_AVAILABLE = importlib.util.find_spec("distributed") is not None


def build_local_gpu_cluster(n_workers: int, options: Mapping[str, Any]) -> Any:
    """A client of a local GPU cluster (``env: local_gpu``); see :func:`build_client`."""
    return build_client({"env": "local_gpu", "n_workers": n_workers, "options": dict(options)})


class _Module(types.ModuleType):
    """This module, with ``parallel_config`` as upstream's read-and-assign module global."""

    @property
    def parallel_config(self) -> Any:
        return get_parallel_config()

    @parallel_config.setter
    def parallel_config(self, value: Any) -> None:
        set_parallel(value)


sys.modules[__name__].__class__ = _Module

__all__ = [
    "DictReturnWorkerPlugin",
    "build_client",
    "build_local_gpu_cluster",
    "get_client",
    "get_parallel_config",
    "parallel_for",
    "parallel_map",
    "set_parallel",
    "wrap_func_with_worker_env",
]
