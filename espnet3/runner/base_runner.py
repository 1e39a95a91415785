"""Apply a runner's ``forward`` to indices: in process, on Dask, or as detached shard jobs.

Subclass :class:`BaseRunner`, write a static ``forward(idx, *, dataset, model, **params)``
and give it a provider (an :class:`~espnet3.runner.provider.EnvironmentProvider`, or any
object with ``build_env_local()``). One class serves both shapes ESPnet3 has had:

- **without** ``output_dir`` (the guide's runner): the call returns the results in the order of
  the indices, ``None`` results filtered out; with ``async_mode=True`` it submits detached
  shard jobs whose results are read back later (:mod:`espnet3.runner.async_backend`);
- **with** ``output_dir`` (upstream ESPnet3's shard runner): the indices are split into shards
  ``<output_dir>/<shard_subdir>/split.N``, each written by the writer hooks
  (:meth:`~BaseRunner.open_writers`, :meth:`~BaseRunner.write_record`,
  :meth:`~BaseRunner.close_writers`) and marked ``done``; the call returns
  :meth:`~BaseRunner.merge` of the shard directories, and a repeated call (``resume``) runs only
  the shards that are not done (:mod:`espnet3.runner.sharded`). ``async_mode=True`` submits
  them as detached job-array tasks, one per ``split.N``.

With ``batch_size``, ``forward`` gets lists of indices and each list has one result. Where the
call runs follows :func:`espnet3.parallel.get_parallel_config` (or the innermost open
:func:`espnet3.parallel.get_client`), decided in one place,
:func:`espnet3.runner.backends.choose_backend`.

Example:
    >>> from espnet3.runner.inference_provider import InferenceProvider
    >>> class Words(InferenceProvider):
    ...     @staticmethod
    ...     def build_dataset(cfg):
    ...         return ["a", "bb", "", "dddd"]
    ...     @staticmethod
    ...     def build_model(cfg):
    ...         return len
    >>> class Lengths(BaseRunner):
    ...     @staticmethod
    ...     def forward(idx, *, dataset, model, **params):
    ...         n = model(dataset[idx])
    ...         return {"idx": idx, "len": n} if n else None
    >>> Lengths(Words())(range(4))
    [{'idx': 0, 'len': 1}, {'idx': 1, 'len': 2}, {'idx': 3, 'len': 4}]
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError
from espnet3.parallel.placement import placement
from espnet3.runner.backends import choose_backend
from espnet3.runner.outcomes import ItemFailure, Unit, as_index
from espnet3.runner.provider import EnvironmentProvider
from espnet3.runner.shard_dir import is_done, lock_path
from espnet3.runner.shard_plan import plan_shards, shard_dir, shards_root
from espnet3.runner.shard_run import call_hook
from espnet3.utils.atomic import atomic_write_jsonl
from espnet3.utils.checks import check_error_policy, check_positive, check_seconds
from espnet3.utils.progress import progress

log = logging.getLogger(__name__)


class BaseRunner:
    """Runs ``forward`` over indices with the environment of ``provider``.

    Args:
        provider: builds ``{dataset, model, **params}`` once per process: an
            :class:`EnvironmentProvider`, or any object with ``build_env_local()`` (and
            ``build_worker_setup_fn()`` to run on a cluster).
        batch_size: when set, ``forward`` receives lists of up to this many indices and its
            return value is the result of that batch (a positive integer, checked per call).
        output_dir: where the shards of a call go (``<output_dir>/<shard_subdir>/split.N``);
            with it, the call returns :meth:`merge` (see the module docstring).
        shard_subdir: the folder under ``output_dir`` that holds this call's shards and its
            ``manifest.json`` (e.g. one per split).
        resume: skip the shards already ``done`` and refuse a changed shard plan; ``False``
            replaces the plan and runs every shard again.
        async_mode: submit detached shard jobs instead of waiting for results; the call then
            returns an :class:`~espnet3.runner.async_backend.AsyncSubmission`, the list of
            what was submitted for each shard.
        async_specs_dir, async_result_dir: without ``output_dir``, where an async call records
            its shards and where their results go.
        async_shard_size: units per shard of an async call (default: spread over
            ``parallel.n_workers``).
        async_max_running: shard jobs allowed to run at once (default ``parallel.n_workers``).
        on_error: ``"raise"`` stops at the first failing item with an error naming its index
            and ``utt_id`` (also of the type the item raised); ``"skip"`` goes on and records
            each failure in ``errors_path`` (for shards, in ``split.N/errors.jsonl``). An item
            whose worker dies, or whose result cannot be sent back, is such a failure too.
        item_timeout: seconds after which an item is given up on (a failure as above);
            default ``parallel.item_timeout``. Without one, an item that runs far longer than
            the others is named in a warning.
        backend: a name of :data:`espnet3.runner.backends.BACKENDS` to use whatever the
            config says (default: chosen per call, see :mod:`espnet3.runner.backends`).

    Shard jobs rebuild a runner as ``cls(provider, **options)`` with the options above; a
    subclass with its own constructor must accept that call.
    """

    def __init__(
        self,
        provider: EnvironmentProvider,
        batch_size: int | None = None,
        output_dir: str | os.PathLike | None = None,
        shard_subdir: str = "",
        resume: bool = True,
        *,
        async_mode: bool = False,
        async_specs_dir: str | os.PathLike = "async_specs",
        async_result_dir: str | os.PathLike = "async_results",
        async_shard_size: int | None = None,
        async_max_running: int | None = None,
        on_error: str = "raise",
        errors_path: str | os.PathLike = "errors.jsonl",
        item_timeout: float | None = None,
        backend: str | None = None,
    ):
        if not callable(getattr(provider, "build_env_local", None)):
            raise ConfigError(
                f"{type(self).__name__} needs a provider with build_env_local() (e.g. an "
                f"EnvironmentProvider), got {type(provider).__name__}"
            )
        if type(self).forward is BaseRunner.forward:
            raise ConfigError(
                f"{type(self).__qualname__} does not define forward: subclass BaseRunner with a "
                f"static forward(idx, *, dataset, model, **params)"
            )
        if not isinstance(inspect.getattr_static(type(self), "forward"), staticmethod):
            raise ConfigError(
                f"{type(self).__qualname__}.forward must be a @staticmethod (it runs on workers "
                "without the runner object): add @staticmethod above it and drop self"
            )
        check_error_policy(on_error)
        for name, value in (
            ("async_shard_size", async_shard_size),
            ("async_max_running", async_max_running),
        ):
            check_positive(name, value)
        self.provider = provider
        self.batch_size = batch_size
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.shard_subdir = shard_subdir or ""
        self.resume = resume
        self.async_mode = async_mode
        self.async_specs_dir = Path(async_specs_dir)
        self.async_result_dir = Path(async_result_dir)
        self.async_shard_size = async_shard_size
        self.async_max_running = async_max_running
        self.on_error = on_error
        self.errors_path = Path(errors_path)
        self.item_timeout = check_seconds("item_timeout", item_timeout)
        self.backend = backend

    @staticmethod
    def forward(idx: Any, *, dataset: Any, model: Any, **params: Any) -> Any:
        """Process one index (or a list of them with ``batch_size``); ``None`` filters it out."""
        raise NotImplementedError(
            "a runner must define a static forward(idx, *, dataset, model, **params)"
        )

    # ----- writer hooks (upstream ESPnet3's; override them to write a shard's files) --------
    @staticmethod
    def open_writers(shard_dir: Path | None, **env: Any) -> dict[str, Any]:
        """Open what a shard writes to; called once per shard, in its ``split.N`` directory."""
        return {}

    @staticmethod
    def write_record(writers: dict[str, Any], result: Any, state: dict[str, Any], **env: Any):
        """Keep one ``forward`` result; by default in ``state["records"]`` (kept in memory)."""
        state.setdefault("records", []).append(result)

    @staticmethod
    def close_writers(
        writers: dict[str, Any], state: dict[str, Any], **env: Any
    ) -> dict[str, Any] | None:
        """Close what :meth:`open_writers` opened; a returned dict is merged into ``state``."""
        for writer in writers.values():
            close = getattr(writer, "close", None)
            if callable(close):
                close()
        return None

    def merge(self, shard_dirs: list[Path]) -> Any:
        """The call's result from the ``done`` shard directories, in plan order (default:
        ``None``, the outputs being the files)."""
        return None

    # ----- one shard's life (upstream's classmethods; the hooks above are what to override) --
    @classmethod
    def init_state(
        cls, shard_id: int = 0, output_dir: str = "", shard_subdir: str = "", **env: Any
    ) -> dict[str, Any]:
        """Make ``split.<shard_id>`` and open its writers: the shard's starting state."""
        directory = shard_dir(shards_root(output_dir, shard_subdir), shard_id)
        directory.mkdir(parents=True, exist_ok=True)
        writers = call_hook(
            cls.open_writers,
            directory,
            shard_id=shard_id,
            output_dir=output_dir,
            shard_subdir=shard_subdir,
            **env,
        )
        return {
            "shard_id": shard_id,
            "shard_dir": str(directory),
            "_writers": writers,
            "records": [],
        }

    @classmethod
    def reduce_state(cls, state: dict[str, Any], result: Any, **env: Any) -> dict[str, Any]:
        """Pass one result to :meth:`write_record`."""
        call_hook(cls.write_record, state["_writers"], result, state, **env)
        return state

    @classmethod
    def finalize_state(cls, state: dict[str, Any], **env: Any) -> dict[str, Any]:
        """Close the shard's writers (:meth:`close_writers`) and fold what it returns in."""
        meta = call_hook(cls.close_writers, state.get("_writers", {}), state, **env) or {}
        state.update(meta)
        state.pop("_writers", None)
        return state

    @classmethod
    def is_shard_done(cls, shard_dir: Path) -> bool:
        """Whether ``shard_dir`` is done (its ``done`` marker, and its files unchanged since)."""
        return is_done(shard_dir)

    @classmethod
    def _get_lock_path(cls, shard_dir: Path) -> Path:
        """Upstream's name for where a shard's claim lives (``split.N/lock``)."""
        return lock_path(shard_dir)

    def _plan_shards(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        """The call's shards: of at most ``async_shard_size`` units for an async call that sets
        it; otherwise one shard in process, or one per worker (``parallel.n_workers``) on a
        cluster. Override it to plan otherwise (a subclass's plan is kept in the manifest)."""

        if self.async_mode and self.async_shard_size:
            n_shards = math.ceil(len(items) / self.async_shard_size)
        else:
            where = placement()
            n_shards = 1 if where.sequential and not self.async_mode else where.config.n_workers
        return plan_shards(items, n_shards)

    # ----- calls -------------------------------------------------------------------------
    def __call__(self, indices: Iterable[int]) -> Any:
        """Results of every index (or batch), in order, ``None`` left out; with ``output_dir``,
        :meth:`merge` of the shards; or the async submission.

        The list holds every result: for a very large run, stream with :meth:`iter`.
        """
        check_positive("batch_size", self.batch_size)
        backend, where = choose_backend(self)
        return backend.call(self, indices, where)

    def iter(self, indices: Iterable[int]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(index, result)`` in the order of ``indices``, holding only what is in flight.

        With ``batch_size`` the first element is the batch: the list of its indices.

        Example:
            >>> class Echo(BaseRunner):
            ...     @staticmethod
            ...     def forward(idx, **env):
            ...         return idx * 10
            >>> class Empty(EnvironmentProvider):
            ...     def build_env(self):
            ...         return {}
            >>> list(Echo(Empty()).iter([3, 1]))
            [(3, 30), (1, 10)]
        """
        check_positive("batch_size", self.batch_size)
        backend, where = choose_backend(self, streaming=True)
        units: Iterable[Unit] = _Units(indices, self.batch_size)
        sized = hasattr(indices, "__len__")
        if not sized:  # a generator of indices: no length for chunk sizing or the bar
            units = iter(units)
        failures: list[dict[str, Any]] = []
        total = len(indices) if sized else None  # type: ignore[arg-type]
        bar = progress(total, type(self).__name__)
        try:
            for outcome in backend.outcomes(
                type(self).forward, self.provider, units, self.item_timeout, where
            ):
                if isinstance(outcome, ItemFailure):
                    if self.on_error == "raise":
                        raise outcome.to_error()
                    failures += outcome.records()
                    bar.update(len(outcome.indices))
                    continue
                for unit, result in outcome:
                    bar.update(len(unit) if isinstance(unit, list) else 1)
                    if result is not None:
                        yield unit, result
            bar.close()
        finally:
            bar.close(finished=False)
            if self.on_error == "skip":
                atomic_write_jsonl(self.errors_path, failures)
                if failures:
                    log.warning(
                        "%d item(s) failed and were skipped: see %s",
                        len(failures),
                        self.errors_path,
                    )


class _Units:
    """Sized ``indices`` as units (single indices, or lists of ``batch_size``), lazily."""

    def __init__(self, indices: Iterable[int], batch_size: int | None):
        self.indices = indices
        self.batch_size = batch_size

    def __len__(self) -> int:
        n = len(self.indices)  # type: ignore[arg-type]
        return n if self.batch_size is None else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Unit]:
        checked = (as_index(position, i) for position, i in enumerate(self.indices))
        if self.batch_size is None:
            yield from checked
            return
        while batch := list(itertools.islice(checked, self.batch_size)):
            yield batch
