"""Who may talk to a scheduler: TLS decided from where it listens, and checked where it bound.

Example:
    >>> from espnet3.parallel.config import ParallelConfig
    >>> wants_tls(ParallelConfig(env="local"), "0.0.0.0"), wants_tls(ParallelConfig(), LOOPBACK)
    (True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from espnet3.errors import SetupError

if TYPE_CHECKING:
    from espnet3.parallel.config import ParallelConfig

#: Where workers, scheduler and client talk when nothing else is asked for.
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = (LOOPBACK, "localhost", "::1")


def wants_tls(config: ParallelConfig, listen_host: str | None) -> bool:
    """Whether the scheduler must use TLS: asked for, or ``auto`` and not only on loopback.

    ``listen_host`` is ``None`` when the scheduler listens for jobs on other hosts.
    """
    if config.security == "tls":
        return True
    if config.security == "none":
        return False
    return listen_host not in LOOPBACK_HOSTS


def temporary_tls_options() -> dict[str, Any]:
    """A fresh temporary certificate: only holders (this client, our workers) may connect."""
    from distributed.security import Security

    return {"security": Security.temporary(), "protocol": "tls://"}


def check_exposure(cluster: Any, config: ParallelConfig) -> None:
    """Refuse a scheduler that listens beyond loopback without TLS (unless security: none).

    The decision before the start (:func:`wants_tls`) reads the options; this reads the
    address the scheduler really bound, whatever set it. The cluster is closed before raising.
    """
    scheme, _, location = str(cluster.scheduler_address).partition("://")
    host = location.rsplit(":", 1)[0].strip("[]")
    if config.security == "none" or scheme == "tls" or host in LOOPBACK_HOSTS:
        return
    cluster.close()
    raise SetupError(
        f"the scheduler of parallel.env '{config.env}' listens on {cluster.scheduler_address} "
        "without TLS, so anyone who can reach it can run code here: set parallel.security: tls "
        "(or leave it auto and say where it listens in options.host), or listen on 127.0.0.1"
    )
