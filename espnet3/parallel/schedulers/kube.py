"""``env: kube``: Dask workers as pods of a Kubernetes cluster (dask-kubernetes operator).

Example:
    >>> SCHEDULERS[0].cluster_class
    'dask_kubernetes.operator.KubeCluster'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from espnet3.parallel.schedulers.base import Scheduler

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class Kube(Scheduler):
    envs = ("kube",)
    cluster_class = "dask_kubernetes.operator.KubeCluster"
    package = "dask-kubernetes"
    temporary_tls = False

    def start_cluster(self, config: ParallelSettings) -> Any:
        cluster = super().start_cluster(config)
        cluster.scale(config.n_workers)
        return cluster


SCHEDULERS = (Kube(),)
