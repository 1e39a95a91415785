"""``BaseSystem``: a recipe config and the steps run from it, starting with dataset creation.

The config (a mapping, an OmegaConf ``DictConfig`` or a YAML path) uses these sections; others
(model, trainer, ...) are kept in :attr:`BaseSystem.config` for subclasses:

```yaml
recipe_dir: /path/to/recipes/mini_an4/asr   # holds dataset/ for entries without data_src
dataset: {train: [...], valid: [...], test: [...]}   # see DataOrganizer
create_dataset: {data_dir: /data/mini_an4}   # kwargs for every builder
parallel: {env: local, n_workers: 2}         # backend builders' parallel_map calls use
```

Example:
    >>> import pathlib, tempfile
    >>> recipe = pathlib.Path(tempfile.mkdtemp())
    >>> system = BaseSystem({"recipe_dir": str(recipe), "dataset": {}})
    >>> system.create_dataset()
    []
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from espnet3.components.data.data_organizer import DataOrganizer, DatasetConfig, parse_sections
from espnet3.components.data.dataset_reference import builder_class, resolve_dataset_module
from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel import ParallelConfig, get_parallel_config, set_parallel
from espnet3.utils.config import as_mapping
from espnet3.utils.locking import file_lock

log = logging.getLogger(__name__)


class BaseSystem:
    """A recipe config plus the steps that act on it.

    Args:
        config: mapping, ``DictConfig`` or path to a YAML file. When a YAML file gives no
            ``recipe_dir``, the recipe directory is the file's directory, or its parent when
            the file sits in ``conf/``.
        recipe_roots: extra directories searched for ``data_src: name/task`` references, before
            ``$ESPNET3_RECIPES`` and the source tree's ``recipes/``.
        lock_dir: where build locks live; default ``<recipe_dir>/.espnet3/locks`` (put it on
            a filesystem every node shares when builds may start on several nodes).
    """

    def __init__(
        self,
        config: Any,
        *,
        recipe_roots: Iterable[str | os.PathLike] | None = None,
        lock_dir: str | os.PathLike | None = None,
    ):
        config, default_recipe_dir = _load(config)
        self.config = as_mapping(config, "config")
        recipe_dir = self.config.get("recipe_dir", default_recipe_dir)
        self.recipe_dir = Path(recipe_dir).resolve() if recipe_dir is not None else None
        self.recipe_roots = [Path(p) for p in recipe_roots or ()]
        self.dataset_sections = parse_sections(self.config.get("dataset"))
        self.create_dataset_kwargs = as_mapping(self.config.get("create_dataset"), "create_dataset")
        self.parallel = ParallelConfig.from_any(self.config.get("parallel"))
        base = self.recipe_dir / ".espnet3" if self.recipe_dir else Path(tempfile.gettempdir())
        self.lock_dir = Path(lock_dir) if lock_dir is not None else base / "locks"

    def dataset_references(self) -> list[DatasetConfig]:
        """Every distinct (``data_src``, ``data_src_args``) of train, valid and test, in order.

        Entries given as a ``dataset: {_target_: ...}`` config have no builder and are left out.
        """
        seen: dict[str, DatasetConfig] = {}
        for section in ("train", "valid", "test"):
            for cfg in self.dataset_sections.get(section, []):
                if cfg.uses_reference:
                    seen.setdefault(cfg.reference_key(), cfg)
        return list(seen.values())

    def create_dataset(self, lock_timeout: float | None = None) -> list[dict[str, Any]]:
        """Run the builder lifecycle of every dataset reference; return what each one did.

        For each reference, under a lock file that keeps a second process from building the
        same dataset at the same time: nothing when ``is_built()`` already holds; otherwise
        ``prepare_source()`` unless ``is_source_prepared()``, then ``build()``, then
        ``is_built()`` must hold. Builders receive ``create_dataset`` kwargs overridden by the
        entry's ``data_src_args``, and run with this config's ``parallel:`` as the default
        backend. Returns one ``{"data_src", "data_src_args", "steps"}`` dict per reference,
        ``steps`` listing the methods that ran (empty when there was nothing to do).
        """
        previous = get_parallel_config()
        set_parallel(self.parallel)
        try:
            return [self._create_one(cfg, lock_timeout) for cfg in self.dataset_references()]
        finally:
            set_parallel(previous)

    def data_organizer(self) -> DataOrganizer:
        """The :class:`DataOrganizer` of this config's ``dataset:`` section."""
        return DataOrganizer(
            **self.dataset_sections, recipe_dir=self.recipe_dir, recipe_roots=self.recipe_roots
        )

    def _create_one(self, cfg: DatasetConfig, lock_timeout: float | None) -> dict[str, Any]:
        module = resolve_dataset_module(
            cfg.data_src, recipe_dir=self.recipe_dir, recipe_roots=self.recipe_roots
        )
        builder = builder_class(module, cfg.data_src)()
        kwargs = {**self.create_dataset_kwargs, **cfg.data_src_args}
        label = f"dataset {cfg.data_src or self.recipe_dir}" + (
            f" with {cfg.data_src_args}" if cfg.data_src_args else ""
        )
        steps: list[str] = []
        with file_lock(self._lock_path(module, cfg), timeout=lock_timeout):
            if not _run(builder, "is_built", kwargs, label):
                if not _run(builder, "is_source_prepared", kwargs, label):
                    _run(builder, "prepare_source", kwargs, label)
                    steps.append("prepare_source")
                    _require(builder, "is_source_prepared", "prepare_source", kwargs, label)
                _run(builder, "build", kwargs, label)
                steps.append("build")
                _require(builder, "is_built", "build", kwargs, label)
        log.info("%s: %s", label, ", ".join(steps) or "already built")
        return {"data_src": cfg.data_src, "data_src_args": cfg.data_src_args, "steps": steps}

    def _lock_path(self, module: Any, cfg: DatasetConfig) -> Path:
        key = f"{module.__name__}\n{cfg.reference_key()}"
        slug = re.sub(r"\W+", "_", cfg.data_src or "recipe").strip("_")
        return self.lock_dir / f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.lock"


def _run(builder: Any, method: str, kwargs: dict[str, Any], label: str) -> Any:
    try:
        return getattr(builder, method)(**kwargs)
    except Espnet3Error:
        raise
    except Exception as err:
        raise Espnet3Error(
            f"{label}: {type(builder).__name__}.{method}() failed with "
            f"{type(err).__name__}: {err}; fix the cause and run create-dataset again "
            "(finished steps are not redone)"
        ) from err


def _require(builder: Any, check: str, step: str, kwargs: dict[str, Any], label: str) -> None:
    if not _run(builder, check, kwargs, label):
        name = type(builder).__name__
        raise Espnet3Error(
            f"{label}: {name}.{step}() returned but {name}.{check}() is still False: the "
            f"builder's {step} does not produce what its {check} looks for; fix the builder"
        )


def _load(config: Any) -> tuple[Any, Path | None]:
    if not isinstance(config, str | os.PathLike):
        return config, None
    from omegaconf import OmegaConf

    path = Path(config).resolve()
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist: check the path")
    folder = path.parent
    return OmegaConf.load(path), folder.parent if folder.name == "conf" else folder
