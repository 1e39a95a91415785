"""The per-process environment built by a ``setup_fn``, and binding it to mapped functions.

A ``setup_fn`` is a zero-argument callable returning a dict (a dataset, a model, helpers). It
runs at most once per process: on a Dask worker when the worker starts (see
:mod:`espnet3.parallel.worker_plugin`) or on its first task, in this process once per
sequential run. The dict is injected into mapped functions by parameter name, or whole when
the function takes ``**kwargs``.

This module imports no Dask, so sequential runs never load it.

Example:
    >>> def setup():
    ...     return {"scale": 3}
    >>> def work(x, scale):
    ...     return x * scale
    >>> call = bind_env(work, build_env(setup), {})
    >>> call(2)
    6
"""

from __future__ import annotations

import functools
import inspect
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from espnet3.errors import ConfigError, Espnet3Error, ItemError
from espnet3.parallel.context import open_client

SetupFn = Callable[[], Mapping[str, Any]]

_ENVS: dict[str, Mapping[str, Any]] = {}
_FAILURES: dict[str, Espnet3Error] = {}
_LOCK = threading.Lock()
_REFUSALS: list[Espnet3Error] = []  # why this worker must run no task (a wrong image)
_REGISTERED: list[tuple[str, SetupFn]] = []  # setups of this worker's plugins, in order


def build_env(setup_fn: SetupFn | None) -> Mapping[str, Any]:
    """Run ``setup_fn`` and check that it returned a mapping; ``{}`` without one.

    Example:
        >>> build_env(lambda: {"k": 1})
        {'k': 1}
    """
    if setup_fn is None:
        return {}
    try:
        env = setup_fn()
    except Espnet3Error:  # already a message for people
        raise
    except Exception as exc:
        raise ItemError(
            f"setup {_describe(setup_fn)} failed: {type(exc).__name__}: {exc}",
            worker_traceback=traceback.format_exc(),
        ) from None
    if not isinstance(env, Mapping):
        raise ConfigError(
            f"setup {_describe(setup_fn)} must return a dict of names to objects, "
            f"got {type(env).__name__}: return e.g. {{'model': model}}"
        )
    return env


def setup_key(setup_fn: SetupFn | None) -> str | None:
    """A key naming ``setup_fn`` by its content, so that repeated maps reuse one environment.

    Example:
        >>> setup_key(None) is None
        True
    """
    if setup_fn is None:
        return None
    from dask.base import tokenize  # only cluster runs need a key; sequential ones never load Dask

    return f"espnet3-setup-{tokenize(setup_fn)}"


def process_env(key: str | None, setup_fn: SetupFn | None) -> Mapping[str, Any]:
    """This process's environment for ``key``, built with ``setup_fn`` the first time.

    A failed setup is remembered and raised again, so a broken worker does not retry it for
    every task.

    Example:
        >>> process_env("doc-example", lambda: {"k": 1})
        {'k': 1}
    """
    if _REFUSALS:
        raise _REFUSALS[0]
    if key is None or setup_fn is None:
        return {}
    env = _ENVS.get(key)
    if env is not None:
        return env
    with _LOCK:  # tasks and the worker plugin may ask at the same time: build once
        if key in _FAILURES:
            raise _FAILURES[key]
        if key not in _ENVS:
            try:
                _ENVS[key] = build_env(setup_fn)
            except Espnet3Error as exc:
                _FAILURES[key] = exc
                raise
        return _ENVS[key]


def refuse_tasks(error: Espnet3Error) -> None:
    """Make every later task of this process fail with ``error`` (see :func:`process_env`)."""
    _REFUSALS.append(error)


def bind_env(
    func: Callable, env: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> Callable[[Any], Any]:
    """``func`` with ``kwargs`` and the ``env`` entries it accepts bound; call it with one item.

    A name given both by the environment and by ``kwargs`` is an error rather than a silent
    override. Binding once per batch keeps signature inspection out of the per-item cost.

    Example:
        >>> bind_env(pow, {}, {"exp": 2})(3)
        9
    """
    clash = env.keys() & kwargs.keys()
    if clash:
        raise ConfigError(
            f"argument(s) {sorted(clash)} are given both by the setup environment and by the "
            f"call's keyword arguments: rename one of them"
        )
    bound = dict(kwargs)
    if env:
        names, takes_var_kw = _parameters(func)
        bound.update(env if takes_var_kw else {k: v for k, v in env.items() if k in names})
    return functools.partial(func, **bound) if bound else func


def _parameters(func: Callable) -> tuple[frozenset[str], bool]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: inject nothing
        return frozenset(), False
    names = frozenset(p.name for p in params if p.kind is not p.VAR_KEYWORD)
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _describe(func: Callable) -> str:
    return getattr(func, "__qualname__", None) or type(func).__qualname__


def wrap_func_with_worker_env(func: Callable) -> Callable:
    """``func`` for ``client.map``: on a worker, the ``setup_fn`` environment of the open
    :func:`~espnet3.parallel.get_client` block is passed to it by parameter name (all of it
    when ``func`` takes ``**kwargs``), as upstream ESPnet3's function of this name does.

    A name given both by the environment and by the call is a ``ValueError`` ("Argument
    conflict"). Outside a worker (a sequential block) the block's environment is used.

    Example:
        >>> def add_bias(x, bias):
        ...     return x + bias
        >>> from espnet3.parallel import get_client
        >>> with get_client({"env": "none"}, setup_fn=lambda: {"bias": 7}):
        ...     wrap_func_with_worker_env(add_bias)(1)
        8
    """
    return _WithWorkerEnv(func)


class _WithWorkerEnv:
    """A picklable ``func`` that takes the worker's environment (see the function above)."""

    def __init__(self, func: Callable):
        self.func = func
        self.names, self.takes_all = _parameters(func)
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        env = _current_env()
        given = set(kwargs) if self.takes_all else self.names & set(kwargs)
        conflict = set(env) & given
        if conflict:
            raise ValueError(f"Argument conflict: {conflict} passed via both kwargs and env")
        extra = {
            k: v for k, v in env.items() if k not in kwargs and (self.takes_all or k in self.names)
        }
        return self.func(*args, **kwargs, **extra)


def _current_env() -> Mapping[str, Any]:
    """The environment of the setup this process runs tasks for (on a worker: the latest
    registered; in this process: the innermost open block's)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):  # not on a worker
        block = open_client()
        return block.env or {} if block is not None else {}
    if not _REGISTERED:
        return {}
    return process_env(*_REGISTERED[-1])


def register_setup(key: str, setup_fn: SetupFn) -> None:
    """Record that this worker builds ``key``'s environment (the latest is the current one)."""
    _REGISTERED.append((key, setup_fn))
