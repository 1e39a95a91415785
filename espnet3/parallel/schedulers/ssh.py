"""``env: ssh``: Dask workers started over SSH on the hosts in ``options.hosts``.

SSHCluster starts remote processes that cannot receive a temporary certificate, so
``security: none`` (on a network you trust) or a certificate of your own is needed.

Example:
    >>> SCHEDULERS[0].temporary_tls
    False
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from espnet3.parallel.schedulers.base import Scheduler, keywords

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class SSH(Scheduler):
    envs = ("ssh",)
    cluster_class = "distributed.SSHCluster"
    package = "asyncssh"
    requires = ("asyncssh",)
    temporary_tls = False

    def extra_options(self, cluster_cls: type) -> set[str]:
        from distributed import SpecCluster  # **kwargs go to SpecCluster

        return keywords(SpecCluster)

    def cluster_options(self, config: ParallelSettings) -> dict[str, Any]:
        options = copy.deepcopy(dict(config.options))
        options.setdefault("scheduler_options", {}).setdefault("dashboard", False)
        return options


SCHEDULERS = (SSH(),)
