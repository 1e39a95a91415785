"""The runner backends, and the one function that picks the backend of a call.

``sequential`` and ``dask`` wait for results (:mod:`espnet3.runner.sync_backend`), or, for a
runner with ``output_dir``, run its shards here or one task each on the cluster
(:mod:`espnet3.runner.sharded`); ``async`` writes shard specs and submits them as scheduler
jobs (:mod:`espnet3.runner.async_backend`).
A runner built with ``backend="name"`` uses that one; otherwise ``async_mode`` means
``async``, and whether the rest runs here or on a cluster is
:func:`espnet3.parallel.placement.placement`'s answer, the same one maps get. A new backend is one
module with a :class:`Backend` subclass and a :func:`register_backend` call.

Example:
    >>> sorted(BACKENDS)
    ['async', 'dask', 'sequential']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from espnet3.errors import ConfigError, did_you_mean
from espnet3.parallel.placement import Placement, placement
from espnet3.runner.async_backend import submit_async
from espnet3.runner.runner_type import Runner
from espnet3.runner.sharded import in_process, on_dask, run_sharded
from espnet3.runner.sync_backend import Outcome, dask_outcomes, sequential_outcomes


class Backend:
    """How a runner call runs. :meth:`call` gives what ``runner(indices)`` returns."""

    name: str = ""
    #: ``outcomes(forward, provider, units, item_timeout, where)``: one outcome per unit, in
    #: unit order, as ``runner.iter`` streams them (``None``: this backend does not stream).
    outcomes: Callable[..., Iterator[Outcome]] | None = None
    #: ``run_shards(runner, works, where)``: runs the claimed shards of a call with
    #: ``output_dir`` (:mod:`espnet3.runner.sharded`).
    run_shards: Callable[..., None] = staticmethod(in_process)

    def call(self, runner: Runner, indices: Iterable[int], where: Placement) -> Any:
        """Every result, in order, ``None`` left out; with ``output_dir``, the shards' merge."""
        if runner.output_dir is not None:
            return run_sharded(runner, indices, where, self.run_shards)
        return [result for _, result in runner.iter(indices)]


class Sequential(Backend):
    name = "sequential"
    outcomes = staticmethod(sequential_outcomes)


class Dask(Backend):
    name = "dask"
    outcomes = staticmethod(dask_outcomes)
    run_shards = staticmethod(on_dask)


class AsyncShards(Backend):
    name = "async"

    def call(self, runner: Runner, indices: Iterable[int], where: Placement) -> Any:

        return submit_async(runner, indices, where)


BACKENDS: dict[str, Backend] = {b.name: b for b in (Sequential(), Dask(), AsyncShards())}


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` available as ``BaseRunner(..., backend=backend.name)``."""
    if backend.name in BACKENDS and BACKENDS[backend.name] is not backend:
        raise ConfigError(f"runner backend '{backend.name}' already exists")
    BACKENDS[backend.name] = backend
    return backend


def choose_backend(runner: Runner, streaming: bool = False) -> tuple[Backend, Placement]:
    """The backend of a call of ``runner`` (of ``runner.iter`` when ``streaming``), and where
    the call runs.

    Example:
        >>> from espnet3.runner.base_runner import BaseRunner
        >>> from espnet3.runner.provider import EnvironmentProvider
        >>> class Echo(BaseRunner):
        ...     @staticmethod
        ...     def forward(idx, **env):
        ...         return idx
        >>> class Empty(EnvironmentProvider):
        ...     def build_env(self):
        ...         return {}
        >>> choose_backend(Echo(Empty()))[0].name
        'sequential'
    """
    where = placement()
    name = runner.backend
    if name is None:
        name = "async" if runner.async_mode and not streaming else None
    if name is None:
        name = "sequential" if where.sequential else "dask"
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown runner backend {name!r}{did_you_mean(name, BACKENDS)}; "
            f"available: {', '.join(BACKENDS)}"
        ) from None
    if streaming and backend.outcomes is None:
        raise ConfigError(
            f"runner backend '{name}' does not stream results: call the runner instead of "
            "runner.iter, or choose another backend"
        )
    return backend, where
