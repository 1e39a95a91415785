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
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, did_you_mean
from espnet3.parallel.container import ContainerSpec
from espnet3.utils.config import check_keys, check_positive

SEQUENTIAL_ENVS = ("none", "sequential")
SECURITY_MODES = ("auto", "tls", "none")

#: Keys of the ``parallel:`` section and what they mean (for error messages and docs).
KNOWN_KEYS = {
    "env": "where workers run: a key of espnet3.parallel.clusters.KINDS (none, local, slurm, ...)",
    "n_workers": "number of Dask workers (a batch job holds options.processes of them)",
    "options": "keyword arguments of the cluster class",
    "container": "run each worker inside a container image",
    "security": "auto | tls | none",
    "min_workers": "workers to wait for before get_client returns",
    "startup_timeout": "seconds to wait for min_workers",
    "log_dir": "directory for worker job logs",
    "item_timeout": "seconds after which one item is given up on (default: none)",
}


@dataclass(frozen=True)
class ParallelConfig:
    """A validated, immutable ``parallel:`` section.

    Build it with :meth:`from_any`; the caller's mapping is deep-copied, never mutated.
    ``options`` is validated against the constructor of the cluster class of ``env``.
    """

    env: str = "none"
    n_workers: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    container: ContainerSpec | None = None
    security: str = "auto"
    min_workers: int = 1
    startup_timeout: float = 600.0
    log_dir: str | None = None
    item_timeout: float | None = None

    def python_command(self, binds: Sequence[str] = ()) -> str:
        """The shell command that runs Python in a worker or shard job; the one place it is
        chosen: the container's python (with ``binds`` bound into the image) when
        ``container`` is set, else ``options.python``, else this interpreter.

        Example:
            >>> ParallelConfig.from_any({"env": "slurm", "options": {"python": "py -X dev"}}
            ... ).python_command()
            'py -X dev'
        """
        if self.container is not None:
            return self.container.worker_python(binds)
        return self.options.get("python") or shlex.quote(sys.executable)

    @property
    def is_sequential(self) -> bool:
        """True when work runs in this process, with no Dask at all."""
        return self.env in SEQUENTIAL_ENVS

    @classmethod
    def from_any(cls, config: Any) -> ParallelConfig:
        """Build from ``None``, a mapping, an OmegaConf ``DictConfig``, a YAML path or a config.

        A mapping that holds a ``parallel`` key (a whole recipe config) is accepted too.
        """
        if config is None:
            return cls()
        if isinstance(config, ParallelConfig):  # a copy: the caller may still change its dicts
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
        from espnet3.parallel.clusters import cluster_kind, listen_host

        kind = cluster_kind(env)  # raises for an unknown env, listing the supported ones
        n_default = (os.cpu_count() or 1) if env == "local" else 1
        n_workers = _positive_int("n_workers", data.get("n_workers", n_default))
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
        options = data.get("options") or {}
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"parallel.options must be a mapping of cluster arguments, "
                f"got {type(options).__name__}"
            )
        kind.check_options(env, options)  # first: a missing package is the first thing to fix
        options = _walltime_as_clock(options)
        if kind.family == "jobqueue":
            _check_job_resources(options)
        if kind.family == "local":
            listen_host(options)  # an interface this machine does not have fails here
        security = _security(data.get("security"))
        if security != "none" and not kind.temporary_tls:
            raise ConfigError(
                f"parallel.env '{env}' cannot give its remote processes a temporary TLS "
                f"certificate, so security: {security} cannot be honoured: use a batch-scheduler "
                f"env, or set parallel.security: none only on a network you trust"
            )
        container = ContainerSpec.from_any(data.get("container"))
        if container is not None and "python" in options:
            raise ConfigError(
                "parallel.options.python and parallel.container are both set: the container "
                "decides the workers' python; remove options.python"
            )
        log_dir = data.get("log_dir")
        item_timeout = data.get("item_timeout")
        if item_timeout is not None and (
            isinstance(item_timeout, bool)
            or not isinstance(item_timeout, (int, float))
            or item_timeout <= 0
        ):
            raise ConfigError(
                f"parallel.item_timeout must be a positive number of seconds or null, got "
                f"{item_timeout!r}"
            )
        return cls(
            env=env,
            n_workers=n_workers,
            options=dict(options),
            container=container,
            security=security,
            min_workers=min_workers,
            startup_timeout=float(timeout),
            log_dir=str(log_dir) if log_dir is not None else None,
            item_timeout=float(item_timeout) if item_timeout is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain, deep-copied dict that :meth:`from_any` turns back into an equal config."""
        return {
            "env": self.env,
            "n_workers": self.n_workers,
            "options": copy.deepcopy(dict(self.options)),
            "container": self.container.to_dict() if self.container else None,
            "security": self.security,
            "min_workers": self.min_workers,
            "startup_timeout": self.startup_timeout,
            "log_dir": self.log_dir,
            "item_timeout": self.item_timeout,
        }


def _walltime_as_clock(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with an integer ``walltime`` written as ``HH:MM:SS``, and the walltime checked.

    YAML 1.1 (which OmegaConf follows) reads ``walltime: 30:00`` as the base-60 number 1800;
    passed on as is, SLURM would read ``-t 1800`` as 1800 minutes. An integer walltime is
    therefore taken as seconds, the value YAML computed.

    Example:
        >>> _walltime_as_clock({"walltime": 1800})
        {'walltime': '00:30:00'}
    """
    from espnet3.parallel.jobqueue import parse_walltime

    options = dict(options)
    walltime = options.get("walltime")
    if isinstance(walltime, int) and not isinstance(walltime, bool):
        hours, rest = divmod(walltime, 3600)
        options["walltime"] = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    elif walltime is not None:
        parse_walltime(walltime)  # a walltime the scheduler cannot read fails now, not at start
    return options


def _check_job_resources(options: Mapping[str, Any]) -> None:
    """A batch job's cores, processes and memory, checked when the config is read.

    Example:
        >>> _check_job_resources({"cores": "one"})
        Traceback (most recent call last):
        ...
        espnet3.errors.ConfigError: parallel.options.cores must be a positive integer, got 'one': e.g. cores: 8
    """
    for key in ("cores", "processes"):
        if options.get(key) is not None:
            check_positive(
                f"parallel.options.{key}", options[key], f": e.g. {key}: 8", none_ok=False
            )
    memory = options.get("memory")
    if memory is not None:
        from dask.utils import parse_bytes

        try:
            if not isinstance(memory, str) or parse_bytes(memory) <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"parallel.options.memory must be an amount with its unit, got {memory!r}: "
                "e.g. memory: 32GB"
            ) from None


def _positive_int(name: str, value: Any) -> int:
    return check_positive(f"parallel.{name}", value, ": set it to 1 or more", none_ok=False)


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
    from omegaconf import OmegaConf

    if not path.is_file():
        raise ConfigError(f"parallel config file {str(path)!r} does not exist")
    return _to_plain_dict(OmegaConf.load(path))


__all__ = ["ParallelConfig", "SEQUENTIAL_ENVS", "SECURITY_MODES"]
