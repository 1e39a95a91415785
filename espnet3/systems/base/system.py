"""``BaseSystem``: a recipe's stage configs and the data-preparation stages run from them.

The training config (a mapping, an OmegaConf ``DictConfig`` or a YAML path) uses these
sections; others (model, trainer, ...) stay in :attr:`BaseSystem.training_config` for
subclasses:

```yaml
recipe_dir: /path/to/recipes/mini_an4/asr   # holds dataset/ for entries without data_src
dataset: {train: [...], valid: [...], test: [...]}   # see DataOrganizer
create_dataset: {data_dir: /data/mini_an4}   # keyword arguments of every builder step
parallel: {env: local, n_workers: 2}         # backend of the builders' maps and runners
```

Stages take no arguments (everything is in the config), as in upstream ESPnet3.

Example:
    >>> import pathlib, tempfile
    >>> recipe = pathlib.Path(tempfile.mkdtemp())
    >>> system = BaseSystem({"recipe_dir": str(recipe), "dataset": {"test": [{"dataset": []}]}})
    >>> system.prepare_datasets()          # entries given as objects have no builder
    []
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from espnet3.components.data.data_organizer import (
    SECTIONS,
    DataOrganizer,
    organizer_class,
    parse_sections,
)
from espnet3.components.data.dataset_module import (
    builder_class,
    load_dataset_module,
    parse_dataset_reference_config,
)
from espnet3.errors import ConfigError, Espnet3Error, OutsideScopeError, SetupError
from espnet3.parallel import ParallelConfig, use_parallel
from espnet3.systems.base.training import train
from espnet3.utils.checks import as_mapping, to_plain
from espnet3.utils.config_files import load_yaml
from espnet3.utils.locking import file_lock

log = logging.getLogger(__name__)

#: Stages of upstream ESPnet3's systems that are not data preparation: each says so when run.
OUTSIDE_STAGES = (
    "infer",
    "measure",
    "pack_model",
    "upload_model",
    "pack_demo",
    "upload_demo",
    "pretrain",
    "compute_xvectors",
)
#: Where each stage's logs belong: a dotted path on the system (first non-empty one wins).
STAGE_LOG_REFS = {
    "create_dataset": "training_config.data_dir",
    "collect_stats": "training_config.stats_dir",
}


class BaseSystem:
    """A recipe's configs plus the stages that act on them.

    Args:
        training_config: mapping, ``DictConfig`` or YAML path. When a YAML file gives no
            ``recipe_dir``, the recipe directory is the file's directory, or its parent when
            the file sits in ``conf/``. Its ``exp_dir``, when set, is created.
        inference_config, metrics_config, publication_config, demo_config: the other stage
            configs, kept for subclasses and :attr:`stage_log_dirs`.
        stage_log_mapping: ``{stage: "training_config.exp_dir"}`` (or a list of such paths,
            the first that is set wins) overriding where a stage's logs go.
        lock_dir: where build locks live; default: beside the data (in the
            ``create_dataset.data_dir`` the builder is given), else ``<recipe_dir>/.espnet3/locks``
            (put it on a filesystem every node shares when builds may start on several nodes).
            A lock file is removed when it is released.
        lock_timeout: seconds to wait for another process's build of the same dataset.
    """

    def __init__(
        self,
        training_config: Any = None,
        inference_config: Any = None,
        metrics_config: Any = None,
        publication_config: Any = None,
        stage_log_mapping: Mapping[str, Any] | None = None,
        demo_config: Any = None,
        *,
        lock_dir: str | os.PathLike | None = None,
        lock_timeout: float | None = None,
    ):
        config, default_recipe_dir = _load(training_config)
        self.training_config = config
        self.inference_config = inference_config
        self.metrics_config = metrics_config
        self.publication_config = publication_config
        self.demo_config = demo_config
        recipe_dir = self._setting("recipe_dir", default_recipe_dir)
        self.recipe_dir = Path(recipe_dir).resolve() if recipe_dir is not None else None
        exp_dir = self._setting("exp_dir")
        self.exp_dir = Path(exp_dir) if exp_dir is not None else None
        if self.exp_dir is not None:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
        self.parallel = ParallelConfig.from_any(self._setting("parallel"))
        base = self.recipe_dir / ".espnet3" if self.recipe_dir else Path(tempfile.gettempdir())
        self.lock_dir = Path(lock_dir) if lock_dir is not None else base / "locks"
        self.lock_dir_given = lock_dir
        self.lock_timeout = lock_timeout
        self.stage_log_dirs: dict[str, Path] = {"default": self.exp_dir or Path.cwd() / "logs"}
        for stage, ref in {**STAGE_LOG_REFS, **(stage_log_mapping or {})}.items():
            resolved = self._resolve_stage_log_ref(ref)
            if resolved:
                self.stage_log_dirs[stage] = Path(resolved)

    @property
    def config(self) -> Any:
        """The training config (the one the data-preparation stages read)."""
        return self.training_config

    # ----------------------------------------------------------------- stages
    def create_dataset(self, *args: Any, **kwargs: Any) -> None:
        """Run the builder lifecycle of every dataset the ``dataset:`` section references.

        See :meth:`prepare_datasets`, which also returns what each builder did.
        """
        _reject_stage_args("create_dataset", args, kwargs)
        self.prepare_datasets()

    def prepare_datasets(self) -> list[dict[str, Any]]:
        """Run every referenced builder's lifecycle; return ``{"data_src", "steps"}`` per builder.

        For each distinct ``data_src`` (entries without one share the recipe's own builder),
        under a lock file that keeps a second process from building the same dataset at the
        same time, in this order: ``is_source_prepared()``, ``prepare_source()`` when that
        was false, ``is_built()``, ``build()`` when that was false. Every step gets the
        ``create_dataset`` section as keyword arguments (with ``recipe_dir`` added when the
        section does not set it) and runs with this config's ``parallel:`` as the default
        backend. ``steps`` lists the steps that ran (empty when there was nothing to do).
        """
        references = self.dataset_references()
        kwargs = as_mapping(self._setting("create_dataset"), "create_dataset")
        if self.recipe_dir is not None:
            kwargs.setdefault("recipe_dir", str(self.recipe_dir))
        log.info("%s.create_dataset(): starting dataset creation process", type(self).__name__)
        start = time.perf_counter()
        with use_parallel(self.parallel), self.stage_cluster():
            report = [self._create_one(data_src, kwargs) for data_src in references]
        log.info("Dataset creation completed in %.2fs", time.perf_counter() - start)
        return report

    @contextlib.contextmanager
    def stage_cluster(self) -> Iterator[None]:
        """Where a stage's maps and runners run: the open :func:`get_client` block, else one
        cluster of ``parallel:`` for the whole stage, started once its work is worth it."""
        from espnet3.parallel.client import get_client
        from espnet3.parallel.context import open_client

        if open_client() is not None or self.parallel.is_sequential:
            yield
            return
        with get_client(self.parallel, start=self.parallel.start or "when_worth_it"):
            yield

    def collect_stats(self, *args: Any, **kwargs: Any) -> None:
        """Feature statistics of the train and valid sets
        (:func:`espnet3.systems.base.training.collect_stats`)."""
        _reject_stage_args("collect_stats", args, kwargs)
        from espnet3.systems.base.training import collect_stats

        with self.stage_cluster():
            collect_stats(self.training_config)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """Upstream's training stage (:func:`espnet3.systems.base.training.train`)."""
        _reject_stage_args("train", args, kwargs)
        return train(self.training_config)

    @staticmethod
    def _get_required_config(config: Any, key: str, error_message: str) -> Any:
        """``config[key]``, or a ``RuntimeError`` with ``error_message`` (upstream's helper)."""
        from espnet3.utils.config_utils import get_required_config

        return get_required_config(config, key, error_message)

    @staticmethod
    def _reject_stage_args(stage: str, args: tuple, kwargs: dict) -> None:
        """Stages take no arguments (upstream's helper)."""
        _reject_stage_args(stage, args, kwargs)

    # ---------------------------------------------------------------- helpers
    def data_organizer(self) -> Any:
        """The organizer of the ``dataset:`` section (its ``_target_`` class, else ours)."""
        return DataOrganizer.from_config(self._dataset_section(), recipe_dir=self.recipe_dir)

    def dataset_references(self) -> list[str | None]:
        """Every distinct ``data_src`` of train, valid and test, in order (``None``: the recipe's).

        Entries given as a ``dataset:`` config or object have no builder and are left out.
        """
        section = self._dataset_section()
        target = section.get("_target_")
        ours = (
            target is None
            or isinstance(cls := organizer_class(target), type)
            and issubclass(cls, DataOrganizer)
        )
        if ours:
            parse_sections(section)  # our organizer's entries: every key checked now
        seen: dict[str | None, None] = {}
        for name in SECTIONS:
            for i, entry in enumerate(to_plain(section.get(name)) or []):
                plain = as_mapping(entry, f"dataset.{name}[{i}]")
                if plain.get("dataset") is None:
                    seen.setdefault(parse_dataset_reference_config(plain)[0])
        if not seen and not any(section.get(name) for name in SECTIONS):
            raise SetupError(
                "training_config.dataset must include at least one entry in dataset.train / "
                "dataset.valid / dataset.test: add one"
            )
        return list(seen)

    def _dataset_section(self) -> dict[str, Any]:
        section = self._setting("dataset")
        if section is None:
            raise SetupError(
                "training_config.dataset must be set for create_dataset stage: add a dataset: "
                "section with train/valid and/or test entries"
            )
        return as_mapping(section, "dataset")

    def _create_one(self, data_src: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        module = load_dataset_module(data_src=data_src, recipe_dir=self.recipe_dir)
        builder = builder_class(module, data_src)()
        label = f"dataset {data_src or self.recipe_dir}"
        log.info("Ensuring dataset is prepared: %s", data_src or "local")
        steps: list[str] = []
        lock = self._lock_path(module, data_src, kwargs.get("data_dir"))
        with file_lock(lock, timeout=self.lock_timeout):
            if not _run(builder, "is_source_prepared", kwargs, label):
                _run(builder, "prepare_source", kwargs, label)
                steps.append("prepare_source")
            if not _run(builder, "is_built", kwargs, label):
                _run(builder, "build", kwargs, label)
                steps.append("build")
        log.info("%s: %s", label, ", ".join(steps) or "already built")
        return {"data_src": data_src, "steps": steps}

    def _lock_path(self, module: Any, data_src: str | None, data_dir: Any) -> Path:
        """Beside the data (``<data_dir>/.espnet3-*.lock``) when the builder is told where it
        goes and no ``lock_dir`` was given, else in the lock directory."""
        key = f"{getattr(module, '__name__', module)}\n{data_src}"
        slug = re.sub(r"\W+", "_", data_src or "recipe").strip("_")
        name = f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.lock"
        if data_dir is not None and self.lock_dir_given is None:
            return Path(str(data_dir)) / f".espnet3-{name}"
        return self.lock_dir / name

    def _setting(self, key: str, default: Any = None) -> Any:
        config = self.training_config
        if config is None:
            return default
        value = config.get(key, default)
        return default if value is None else value

    def _resolve_stage_log_ref(self, ref: Any) -> str | None:
        """The value of a dotted path on this system (a list: the first one that is set)."""
        if isinstance(ref, (list, tuple)):
            return next((v for r in ref if (v := self._resolve_stage_log_ref(r))), None)
        if not isinstance(ref, str):
            return None
        root, *parts = ref.split(".")
        value: Any = getattr(self, root, None)
        for part in parts:
            if value is None:
                return None
            value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
        return None if value is None else str(value)


def _reject_stage_args(stage: str, args: tuple, kwargs: dict) -> None:
    if args or kwargs:
        raise TypeError(
            f"Stage '{stage}' does not accept arguments (got {len(args)} positional, "
            f"{sorted(kwargs)} keyword): put its settings in the YAML config"
        )


def _outside_stage(name: str) -> Any:
    def stage(self: BaseSystem, *args: Any, **kwargs: Any) -> None:
        _reject_stage_args(name, args, kwargs)
        raise OutsideScopeError(name)

    stage.__name__ = stage.__qualname__ = name
    stage.__doc__ = f"Upstream's {name} stage: not data preparation, so it says so in one line."
    return stage


def _run(builder: Any, method: str, kwargs: dict[str, Any], label: str) -> Any:
    try:
        return getattr(builder, method)(**kwargs)
    except Espnet3Error:
        raise
    except Exception as err:
        raise Espnet3Error(
            f"{label}: {type(builder).__name__}.{method}() failed with "
            f"{type(err).__name__}: {err}; fix the cause and run the create_dataset stage again "
            "(finished steps are not redone)"
        ) from err


def _load(config: Any) -> tuple[Any, Path | None]:
    """The config as a ``DictConfig`` (or ``None``), and the recipe directory a file implies."""
    from omegaconf import DictConfig, OmegaConf

    if config is None or isinstance(config, DictConfig):
        return config, None
    if not isinstance(config, str | os.PathLike):
        return OmegaConf.create(as_mapping(config, "training_config")), None
    path = Path(config).resolve()
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist: check the path")
    folder = path.parent
    return load_yaml(path), folder.parent if folder.name == "conf" else folder


for _name in OUTSIDE_STAGES:
    setattr(BaseSystem, _name, _outside_stage(_name))
