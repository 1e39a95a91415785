"""Turn a ``parallel:`` config into a Dask cluster and client, and map work over it.

Example:
    >>> from espnet3.parallel import get_client, parallel_map
    >>> with get_client({"env": "local", "n_workers": 2}) as client:   # doctest: +SKIP
    ...     parallel_map(pow, [1, 2, 3], client, exp=2)
    [1, 4, 9]
"""

from pathlib import Path

from espnet3.parallel.client import build_client, get_client
from espnet3.parallel.config import ParallelConfig
from espnet3.parallel.context import active_client, get_parallel_config, set_parallel, use_parallel
from espnet3.parallel.mapping import map_indexed, parallel_for, parallel_map

# Upstream's espnet3.parallel.base_runner, env_provider and inference_provider name the
# runner, a layer above this package: they live in espnet3/upstream_paths/parallel/.
__path__.append(str(Path(__file__).resolve().parent.parent / "upstream_paths" / "parallel"))

__all__ = [
    "ParallelConfig",
    "active_client",
    "build_client",
    "get_client",
    "get_parallel_config",
    "map_indexed",
    "parallel_for",
    "parallel_map",
    "set_parallel",
    "use_parallel",
]
