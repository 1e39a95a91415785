"""Build a runner's environment (dataset, model, helpers) once per process.

A provider is made from a config and ``params``. In this process :meth:`build_env_local`
builds the environment once and keeps it (each call returns a fresh dict of the same
objects); on Dask workers the function returned by :meth:`build_worker_setup_fn` (also named
:meth:`make_worker_setup_fn`) builds it once per worker. That function carries only the
provider's class path, its plain config and its params, never a built model or dataset, so
shipping it to a thousand workers costs a few bytes each. A provider class defined in the
script being run (``__main__``) has no class path: the function carries the class itself, which
Dask ships by value.

Example:
    >>> class Squares(EnvironmentProvider):
    ...     def build_env(self):
    ...         return {"table": [i * i for i in range(self.config.size)], **self.params}
    >>> provider = Squares({"size": 4}, {"offset": 1})
    >>> provider.build_env_local()
    {'table': [0, 1, 4, 9], 'offset': 1}
    >>> provider.build_env_local()["table"] is provider.build_env_local()["table"]
    True
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from espnet3.errors import ConfigError
from espnet3.runner.class_path import class_ref, load_class
from espnet3.utils.hashing import stable_hash


class EnvironmentProvider:
    """Builds ``{name: object}`` for a runner's ``forward`` from ``config`` and ``params``.

    Subclasses implement :meth:`build_env`, or override :meth:`build_env_local` and
    :meth:`build_worker_setup_fn` themselves as upstream ESPnet3 providers do. ``config`` (a
    mapping, an OmegaConf ``DictConfig`` or ``None``) is resolved and kept as a
    ``DictConfig``; ``params`` are small keyword values (decoding options, paths) merged into
    the environment. A subclass must keep the constructor ``cls(config, params)``: workers
    and shard jobs rebuild the provider that way.
    """

    def __init__(self, config: Any = None, params: Mapping[str, Any] | None = None):
        self.plain_config = plain_config(config)
        from omegaconf import OmegaConf

        self.config = OmegaConf.create(self.plain_config)
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(
                f"{type(self).__name__} params must be a mapping of names to values, "
                f"got {type(params).__name__}"
            )
        self.params: dict[str, Any] = dict(params or {})
        self._env: dict[str, Any] | None = None

    def build_env(self) -> dict[str, Any]:
        """Build and return the environment; called once per process."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement build_env()")

    def build_env_local(self) -> dict[str, Any]:
        """The environment of this process, built on first use; a new dict on every call.

        The objects are built once and shared; the dict is new, so a caller that replaces an
        entry does not change what the next caller gets.

        Example:
            >>> class One(EnvironmentProvider):
            ...     def build_env(self):
            ...         return {"one": 1}
            >>> One().build_env_local()
            {'one': 1}
        """
        if self._env is None:
            from espnet3.parallel.worker_env import build_env

            self._env = dict(build_env(self.build_env))
        return dict(self._env)

    def build_worker_setup_fn(self) -> Any:
        """The zero-argument function that builds this environment in a worker.

        By default :meth:`make_worker_setup_fn`'s; override either one.
        """
        return self.make_worker_setup_fn()

    def make_worker_setup_fn(self) -> WorkerSetup:
        """A picklable zero-argument function that builds this environment in a worker.

        It names the provider's class by path, or carries the class when it has none (defined
        in ``__main__`` or inside a function), which Dask's pickling ships by value.

        Example:
            >>> import pickle
            >>> class One(EnvironmentProvider):
            ...     def build_env(self):
            ...         return {"one": 1}
            >>> setup = One().make_worker_setup_fn()      # doctest: +SKIP
            >>> pickle.loads(pickle.dumps(setup))()       # doctest: +SKIP
            {'one': 1}
        """
        return WorkerSetup(class_ref(type(self)), self.plain_config, dict(self.params))


def worker_setup_fn(provider: Any) -> Any:
    """The setup function that builds ``provider``'s environment on a worker.

    Any provider works that has ``build_worker_setup_fn()`` (upstream ESPnet3's name) or
    ``make_worker_setup_fn()``.

    Example:
        >>> class One(EnvironmentProvider):
        ...     def build_env(self):
        ...         return {"one": 1}
        >>> type(worker_setup_fn(One())).__name__
        'WorkerSetup'
    """
    for name in ("build_worker_setup_fn", "make_worker_setup_fn"):
        make = getattr(provider, name, None)
        if callable(make):
            return make()
    raise ConfigError(
        f"provider {type(provider).__name__} has no build_worker_setup_fn(): a cluster run "
        "builds the environment on each worker with it; add one, or subclass EnvironmentProvider"
    )


@dataclass(frozen=True)
class WorkerSetup:
    """Rebuilds a provider from its class, config and params, and builds its environment.

    ``provider`` is the class path, or the class itself when it has none (defined in
    ``__main__`` or inside a function; see :func:`~espnet3.runner.class_path.class_ref`). Dask
    caches the result per worker process under :meth:`__dask_tokenize__`, which is computed
    from the same three fields, so equal setups share one environment.
    """

    provider: str | type
    config: dict[str, Any]
    params: dict[str, Any]

    def __call__(self) -> dict[str, Any]:
        cls = self.provider if isinstance(self.provider, type) else load_class(self.provider)
        return cls(self.config, self.params).build_env_local()

    def __dask_tokenize__(self) -> str:
        return stable_hash(_class_identity(self.provider), self.config, self.params)


#: Tells apart the classes shipped by value of different processes (see below).
_THIS_PROCESS = uuid.uuid4().hex


def _class_identity(provider: str | type) -> str:
    """``provider`` as :meth:`WorkerSetup.__dask_tokenize__` hashes it.

    A class shipped by value is named by this process and its ``id``: two scripts' own
    ``PrepProvider`` on one shared cluster, or two local classes of one name, must not share
    the environment a worker built for the other.
    """
    if isinstance(provider, str):
        return provider
    return f"{provider.__module__}:{provider.__qualname__}#{_THIS_PROCESS}-{id(provider)}"


def plain_config(config: Any) -> dict[str, Any]:
    """``config`` as a resolved plain dict (from a ``DictConfig``, a mapping or ``None``).

    Example:
        >>> plain_config({"a": 1, "b": "${a}"})
        {'a': 1, 'b': 1}
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if config is None:
        return {}
    if not isinstance(config, (DictConfig, Mapping)):
        raise ConfigError(
            f"a provider config must be a mapping or a DictConfig, got {type(config).__name__}"
        )
    try:
        node = config if isinstance(config, DictConfig) else OmegaConf.create(dict(config))
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"provider config cannot be resolved: {exc}") from None
