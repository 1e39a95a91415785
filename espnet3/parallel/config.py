"""The ``parallel:`` section of a config, validated into a :class:`ParallelConfig`.

Example:
    >>> cfg = ParallelConfig.from_any({"env": "local", "n_workers": 2})
    >>> cfg.env, cfg.n_workers, cfg.is_sequential
    ('local', 2, False)
    >>> ParallelConfig.from_any(None).is_sequential
    True
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, did_you_mean
from espnet3.parallel.container import ContainerSpec
from espnet3.parallel.schedulers import Scheduler, scheduler_for
from espnet3.parallel.schedulers.settings import ParallelSettings
from espnet3.utils.checks import check_keys, check_positive, check_seconds

SECURITY_MODES = ("auto", "tls", "none")

#: Keys of the ``parallel:`` section and what they mean (for error messages and docs).
KNOWN_KEYS = {
    "env": "where workers run: an env of espnet3.parallel.schedulers (none, local, a batch scheduler ...)",
    "n_workers": "number of Dask workers (a batch job holds options.processes of them)",
    "options": "keyword arguments of the cluster class",
    "container": "run each worker inside a container image",
    "security": "auto | tls | none",
    "min_workers": "workers to wait for before get_client returns",
    "startup_timeout": "seconds to wait for min_workers",
    "log_dir": "directory for worker job logs",
    "item_timeout": "seconds after which one item is given up on (default: none)",
    "start": "when the cluster starts: now, or when_worth_it (espnet3 create-dataset's default)",
    "allow_overwrite_lock": "take over shard locks espnet3 cannot check (another tool's, another host's)",
}
#: When a cluster starts: on entering ``get_client``, or once a map's work is worth one.
START_MODES = ("now", "when_worth_it")


class ParallelConfig(ParallelSettings):
    """A validated, immutable ``parallel:`` section (its fields: :class:`ParallelSettings`).

    Build it with :meth:`from_any`; the caller's mapping is deep-copied, never mutated.
    ``options`` is validated by the scheduler of ``env``
    (:func:`~espnet3.parallel.schedulers.scheduler_for`), against its cluster class.
    """

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler of :attr:`env`, which answers everything scheduler-specific."""
        return scheduler_for(self.env)

    @property
    def is_sequential(self) -> bool:
        """True when work runs in this process, with no Dask at all."""
        return self.scheduler.sequential

    @classmethod
    def from_any(cls, config: Any) -> ParallelConfig:
        """Build from ``None``, a mapping, an OmegaConf ``DictConfig``, a YAML path or a config.

        A mapping that holds a ``parallel`` key (a whole recipe config) is accepted too.
        """
        if config is None:
            return cls()
        if isinstance(config, ParallelSettings):  # a copy: the caller may still change its dicts
            return cls._from_dict(config.to_dict())
        if isinstance(config, (str, os.PathLike)):
            config = _load_yaml(Path(config))
        data = _to_plain_dict(config)
        if "parallel" in data and "env" not in data:
            data = _to_plain_dict(data["parallel"]) if data["parallel"] is not None else {}
        return cls._from_dict(data)

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> ParallelConfig:
        check_keys(data, KNOWN_KEYS, "parallel")
        env = str(data.get("env") or "none").lower()
        scheduler = scheduler_for(env)  # raises for an unknown env, listing the supported ones
        options = data.get("options") or {}
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"parallel.options must be a mapping of cluster arguments, "
                f"got {type(options).__name__}"
            )
        # First: a missing package is the first thing to fix.
        options = scheduler.check_options(env, options)
        n_workers = _positive_int(
            "n_workers", data["n_workers"] if "n_workers" in data else scheduler.default_workers()
        )
        min_workers = _positive_int("min_workers", data.get("min_workers", 1))
        if min_workers > n_workers:
            raise ConfigError(
                f"parallel.min_workers ({min_workers}) is larger than parallel.n_workers "
                f"({n_workers}): lower min_workers or raise n_workers"
            )
        timeout = data.get("startup_timeout", 600.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(
                f"parallel.startup_timeout must be a positive number of seconds, got {timeout!r}"
            )
        security = _security(data.get("security"))
        if security != "none" and not scheduler.temporary_tls:
            raise ConfigError(
                f"parallel.env '{env}' cannot give its remote processes a temporary TLS "
                f"certificate, so security: {security} cannot be honoured: use a batch-scheduler "
                f"env, or set parallel.security: none only on a network you trust"
            )
        container = ContainerSpec.from_any(
            data.get("container"), job_variables=scheduler.job_variables
        )
        if container is not None and "python" in options:
            raise ConfigError(
                "parallel.options.python and parallel.container are both set: the container "
                "decides the workers' python; remove options.python"
            )
        log_dir = data.get("log_dir")
        item_timeout = check_seconds("parallel.item_timeout", data.get("item_timeout"))
        return cls(
            env=env,
            n_workers=n_workers,
            options=dict(options),
            container=container,
            security=security,
            min_workers=min_workers,
            startup_timeout=float(timeout),
            log_dir=str(log_dir) if log_dir is not None else None,
            item_timeout=item_timeout,
            start=_start(data.get("start")),
            allow_overwrite_lock=_flag("allow_overwrite_lock", data.get("allow_overwrite_lock")),
        )


def _positive_int(name: str, value: Any) -> int:
    return check_positive(f"parallel.{name}", value, ": set it to 1 or more", none_ok=False)


def _flag(name: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"parallel.{name} must be true or false, got {value!r}")
    return value


def _start(value: Any) -> str | None:
    if value is not None and value not in START_MODES:
        raise ConfigError(
            f"parallel.start must be one of {', '.join(START_MODES)}, got {value!r}"
            f"{did_you_mean(str(value), START_MODES)}"
        )
    return value


def _security(value: Any) -> str:
    if value is None:
        return "auto"
    if not isinstance(value, str) or value.lower() not in SECURITY_MODES:
        raise ConfigError(
            f"parallel.security must be one of {', '.join(SECURITY_MODES)} (a string), got "
            f"{value!r}{did_you_mean(str(value).lower(), SECURITY_MODES)}"
        )
    return value.lower()


def _to_plain_dict(config: Any) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"parallel config must be a mapping, a DictConfig or a YAML path, "
            f"got {type(config).__name__}"
        )
    return _plain(config)


def _plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists, whatever OmegaConf containers ``value`` holds."""
    from omegaconf import Container, OmegaConf

    if isinstance(value, Container):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return copy.deepcopy(value)


def _load_yaml(path: Path) -> dict[str, Any]:

    if not path.is_file():
        raise ConfigError(f"parallel config file {str(path)!r} does not exist")
    from espnet3.utils.config_files import load_yaml

    return _to_plain_dict(load_yaml(path))


__all__ = ["ParallelConfig", "SECURITY_MODES", "START_MODES"]
