"""``env: none`` / ``sequential``: work runs in this process, with no Dask at all.

Example:
    >>> SCHEDULERS[0].check_options("none", {})
    {}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from espnet3.errors import ConfigError
from espnet3.parallel.schedulers.base import Scheduler

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class InProcess(Scheduler):
    envs = ("none", "sequential")
    on_this_host = True
    sequential = True

    def check_options(self, env: str, options: Mapping[str, Any]) -> dict[str, Any]:
        if options:
            raise ConfigError(
                f"parallel.options {sorted(options)} given for env '{env}', which starts no "
                "cluster: remove them or choose env: local"
            )
        return {}

    def start_cluster(self, config: ParallelSettings) -> Any:
        raise ConfigError(f"parallel.env '{config.env}' runs in process and starts no cluster")


SCHEDULERS = (InProcess(),)
