"""The per-process environment built by a ``setup_fn``, and calling functions with it.

A ``setup_fn`` is a zero-argument callable returning a dict (a dataset, a model, helpers). It
runs at most once per process: on a Dask worker through :class:`SetupPlugin` when the worker
starts, else lazily on first use. The dict is injected into mapped functions by parameter name,
or whole when the function takes ``**kwargs``.

Example:
    >>> def setup():
    ...     return {"scale": 3}
    >>> def work(x, scale):
    ...     return x * scale
    >>> env = process_env(setup_key(setup), setup)
    >>> call_with_env(work, 2, env, {})
    6
"""

from __future__ import annotations

import functools
import inspect
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from espnet3.errors import ConfigError, ItemError

SetupFn = Callable[[], Mapping[str, Any]]

_ENVS: dict[str, Mapping[str, Any]] = {}
_FAILURES: dict[str, ItemError] = {}
_LOCK = threading.Lock()


def setup_key(setup_fn: SetupFn | None) -> str | None:
    """A key naming ``setup_fn`` by its content, equal in every process that unpickles it."""
    if setup_fn is None:
        return None
    from dask.base import tokenize

    return f"espnet3-setup-{tokenize(setup_fn)}"


def process_env(key: str | None, setup_fn: SetupFn | None) -> Mapping[str, Any]:
    """Return this process's environment for ``key``, building it with ``setup_fn`` once."""
    if key is None or setup_fn is None:
        return {}
    env = _ENVS.get(key)
    if env is not None:
        return env
    with _LOCK:
        if key in _FAILURES:
            raise _FAILURES[key]
        if key not in _ENVS:
            try:
                env = setup_fn()
            except Exception as exc:
                _FAILURES[key] = ItemError(
                    f"setup {_describe(setup_fn)} failed: {type(exc).__name__}: {exc}",
                    worker_traceback=traceback.format_exc(),
                )
                raise _FAILURES[key] from None
            if not isinstance(env, Mapping):
                raise ConfigError(
                    f"setup {_describe(setup_fn)} must return a dict of names to objects, "
                    f"got {type(env).__name__}"
                )
            _ENVS[key] = env
        return _ENVS[key]


class SetupPlugin(WorkerPlugin):
    """Builds the environment once when a worker starts, so the first task does not pay for it.

    A failure is kept and re-raised by the first task that needs the environment, so it
    reaches the caller with the worker's traceback instead of only the worker's log.
    """

    def __init__(self, setup_fn: SetupFn):
        self.setup_fn = setup_fn
        self.key = setup_key(setup_fn)
        self.name = self.key

    def setup(self, worker: Any) -> None:
        try:
            process_env(self.key, self.setup_fn)
        except Exception:  # re-raised by the tasks that need it
            pass


@functools.lru_cache(maxsize=256)
def _signature(func: Callable) -> tuple[frozenset[str], bool]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature take what they are given
        return frozenset(), True
    names = frozenset(p.name for p in params if p.kind is not p.VAR_KEYWORD)
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def call_with_env(
    func: Callable, item: Any, env: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> Any:
    """Call ``func(item, **kwargs, **env-entries-it-accepts)``.

    A name given both by the environment and by ``kwargs`` is an error rather than a silent
    override.
    """
    if env:
        clash = env.keys() & kwargs.keys()
        if clash:
            raise ConfigError(
                f"argument(s) {sorted(clash)} are given both by the setup environment and by "
                f"the call's keyword arguments: rename one of them"
            )
        names, takes_var_kw = _signature(func)
        injected = env if takes_var_kw else {k: v for k, v in env.items() if k in names}
        return func(item, **kwargs, **injected)
    return func(item, **kwargs)


def _describe(func: Callable) -> str:
    return getattr(func, "__qualname__", None) or type(func).__qualname__
