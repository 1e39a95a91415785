"""Who may talk to a scheduler: TLS with a temporary certificate on every cluster, checked
where it bound.

Loopback is not private: on a shared login node or workstation every local user can reach
127.0.0.1. So ``security: auto`` (the default) and ``tls`` give every cluster, loopback
included, a certificate made in memory for it (only this client and its workers hold it);
``security: none`` opts out, on a machine and network you trust alone.

Example:
    >>> from espnet3.parallel.config import ParallelConfig
    >>> wants_tls(ParallelConfig(env="local")), wants_tls(ParallelConfig(security="none"))
    (True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from espnet3.errors import SetupError

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings

#: Where workers, scheduler and client talk when nothing else is asked for.
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = (LOOPBACK, "localhost", "::1")


def wants_tls(config: ParallelSettings) -> bool:
    """Whether the cluster gets TLS: unless ``security: none``, always."""
    return config.security != "none"


def temporary_tls_options() -> dict[str, Any]:
    """A fresh temporary certificate: only holders (this client, our workers) may connect."""
    from distributed.security import Security

    return {"security": Security.temporary(), "protocol": "tls://"}


def check_exposure(cluster: Any, config: ParallelSettings) -> None:
    """Refuse a scheduler that does not talk TLS (unless ``security: none``).

    The decision before the start (:func:`wants_tls`) sets the options; this reads the
    address the scheduler really bound, whatever set it. The cluster is closed before raising.
    """
    scheme = str(cluster.scheduler_address).partition("://")[0]
    if config.security == "none" or scheme == "tls":
        return
    cluster.close()
    raise SetupError(
        f"the scheduler of parallel.env '{config.env}' listens on {cluster.scheduler_address} "
        "without TLS, so anyone who can reach it (on loopback: every user of this machine) can "
        "run code here: remove the protocol/security options that turn TLS off, or set "
        "parallel.security: none on a machine you use alone"
    )
