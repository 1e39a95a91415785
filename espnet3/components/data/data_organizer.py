"""Build train/valid/test datasets from the ``dataset:`` section of a recipe config.

```yaml
dataset:
  _target_: espnet3.components.data.data_organizer.DataOrganizer   # optional
  train:                          # CombinedDataset; train and valid come together
    - data_src: mini_an4/asr      # a dataset module (see dataset_module)
      data_src_args: {split: train}
  valid:
    - data_src_args: {split: valid}   # no data_src: <recipe_dir>/dataset
  test:                           # {name: DatasetWithTransform}
    - name: test_clean            # default: the data_src, else "local"
      dataset: {_target_: my_project.datasets.Librispeech, split: test-clean}
      transform: {_target_: my_project.transforms.Normalize}
  preprocessor: {_target_: my_project.preprocess.Tokenize}
  use_espnet_collator: false      # true: items are (uid, sample)
```

The section works with ``hydra.utils.instantiate(cfg.dataset)`` (its ``_target_``, or any
organizer class of yours) and with :meth:`DataOrganizer.from_config`.

Example:
    >>> org = DataOrganizer(
    ...     train=[{"dataset": {"_target_": "builtins.list", "_args_": [[{"x": 1}]]}}],
    ...     valid=[{"dataset": [{"x": 2}]}],
    ...     test=[{"name": "t", "dataset": [{"x": 3}]}],
    ... )
    >>> org.train[0], org.valid[0], org.test["t"][0]
    ({'x': 1}, {'x': 2}, {'x': 3})
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from espnet3.components.data.dataset import (
    CombinedDataset,
    DatasetWithTransform,
    ShardedDataset,
    do_nothing,
)
from espnet3.components.data.dataset_module import instantiate_dataset_reference
from espnet3.errors import ConfigError, ContractError, SetupError
from espnet3.utils.checks import as_mapping, check_keys, to_plain
from espnet3.utils.imports import import_object, instantiate
from espnet3.utils.logging_utils import build_callable_name, build_qualified_name

SECTIONS = ("train", "valid", "test")
#: Keys Hydra reads from a section it instantiates.
HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_")
ORGANIZER_KEYS = (*SECTIONS, "preprocessor", "use_espnet_collator", "recipe_dir", *HYDRA_KEYS)


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """One entry of ``train``, ``valid`` or ``test``.

    ``dataset`` is a Hydra config (a mapping with ``_target_``) or a dataset object; without
    it the dataset is ``Dataset(**data_src_args)`` of the module ``data_src`` names (the
    recipe's own ``dataset/`` when ``data_src`` is absent). ``transform`` is a Hydra config, a
    dotted name or a callable. ``split`` is a label some configs carry; nothing reads it.

    Example:
        >>> DatasetConfig.from_any({"data_src": "mini_an4/asr", "data_src_args": {"split": "test"}})
        DatasetConfig(name=None, dataset=None, data_src='mini_an4/asr', data_src_args={'split': 'test'}, transform=None, split=None)
    """

    name: str | None = None
    dataset: Any = None
    data_src: str | None = None
    data_src_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    transform: Any = None
    split: str | None = None

    @classmethod
    def from_any(cls, entry: Any, where: str = "dataset entry") -> DatasetConfig:
        """Validate a mapping (or DictConfig, or DatasetConfig); unknown keys are errors."""
        if isinstance(entry, DatasetConfig):
            return entry
        data = as_mapping(entry, where)
        check_keys(data, [f.name for f in dataclasses.fields(cls)], where)
        cfg = cls(
            **{
                **data,
                "data_src_args": as_mapping(data.get("data_src_args"), f"{where}.data_src_args"),
            }
        )
        if cfg.dataset is not None and (cfg.data_src is not None or cfg.data_src_args):
            raise ConfigError(
                f"{where}: give either dataset (a _target_ config) or data_src/data_src_args, "
                "not both"
            )
        if cfg.name is not None and not isinstance(cfg.name, str):
            raise ConfigError(f"{where}.name must be a string, got {cfg.name!r}")
        return cfg

    @property
    def uses_reference(self) -> bool:
        """True when the dataset comes from a dataset module (and so has a builder)."""
        return self.dataset is None

    @property
    def test_name(self) -> str:
        """The key of this entry among the test sets: ``name``, else ``data_src``, else local."""
        return self.name or self.data_src or "local"

    def entry(self) -> dict[str, Any]:
        """The entry as a mapping of the fields it sets (what a dataset reference reads)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) not in (None, {})
        }


def parse_sections(config: Any, where: str = "dataset") -> dict[str, Any]:
    """Validate a ``dataset:`` section: known keys only, each entry a :class:`DatasetConfig`.

    Returns the section with ``train``/``valid``/``test`` as lists of :class:`DatasetConfig`
    (a section given as ``null`` is left out).
    """
    data = as_mapping(config, where)
    check_keys(data, ORGANIZER_KEYS, where)
    for section in SECTIONS:
        entries = to_plain(data.get(section))
        if entries is None:
            data.pop(section, None)
            continue
        if isinstance(entries, Mapping | str) or not isinstance(entries, Iterable):
            raise ConfigError(
                f"{where}.{section} must be a list of dataset entries, got "
                f"{type(entries).__name__}: write it as a YAML list ('- data_src: ...')"
            )
        data[section] = [
            DatasetConfig.from_any(e, f"{where}.{section}[{i}]") for i, e in enumerate(entries)
        ]
    return data


class DataOrganizer:
    """Train and valid as :class:`CombinedDataset`, test as ``{name: DatasetWithTransform}``.

    Every item flows ``transform`` (per entry) then ``preprocessor`` (shared); an ESPnet-style
    preprocessor gets ``(uid, sample)``. ``recipe_dir`` holds the ``dataset/`` package of
    entries without ``data_src``. Train and valid go together: give both or neither.
    """

    def __init__(
        self,
        train: Iterable[Any] | None = None,
        valid: Iterable[Any] | None = None,
        test: Iterable[Any] | None = None,
        preprocessor: Any = None,
        recipe_dir: str | os.PathLike | None = None,
        *,
        use_espnet_collator: bool = False,
    ):
        sections = parse_sections({"train": train, "valid": valid, "test": test})
        if ("train" in sections) != ("valid" in sections):
            given, missing = ("train", "valid") if "train" in sections else ("valid", "train")
            raise SetupError(
                f"dataset.{given} is set but dataset.{missing} is not: training needs both; "
                f"add a {missing} list, or remove {given} for test-only use"
            )
        self.preprocessor = _preprocessor(preprocessor)
        self.recipe_dir = recipe_dir
        self.train = self._combine(sections.get("train"))
        self.valid = self._combine(sections.get("valid"))
        self.test: dict[str, DatasetWithTransform] = {}
        seen: dict[str, int] = {}
        for i, cfg in enumerate(sections.get("test", [])):
            name = cfg.test_name
            if name in seen:
                raise ConfigError(
                    f"dataset.test[{i}]: test set name {name!r} is already taken by "
                    f"dataset.test[{seen[name]}] (an entry without name is named by its "
                    "data_src, else 'local'): give each test set its own name"
                )
            seen[name] = i
            self.test[name] = DatasetWithTransform(self._dataset(cfg), *self._pipeline(cfg))
        self.use_espnet_collator = use_espnet_collator

    @classmethod
    def from_config(cls, config: Any, *, recipe_dir: str | os.PathLike | None = None) -> Any:
        """The organizer a ``dataset:`` section describes: its ``_target_`` class, else this one.

        A :class:`DataOrganizer` (or subclass) gets ``recipe_dir`` unless the section sets it;
        any other ``_target_`` class is built by Hydra from the section as it is.
        """
        section = as_mapping(config, "dataset")
        target = organizer_class(section.get("_target_", cls))
        if not (isinstance(target, type) and issubclass(target, DataOrganizer)):
            from hydra.utils import instantiate as hydra_instantiate

            return hydra_instantiate(section)
        data = parse_sections(section)
        for key in HYDRA_KEYS:
            data.pop(key, None)
        data.setdefault("recipe_dir", recipe_dir)
        return target(**data)

    @property
    def test_sets(self) -> dict[str, DatasetWithTransform]:
        """The test sets by name (the same mapping as :attr:`test`)."""
        return self.test

    @test_sets.setter
    def test_sets(self, value: dict[str, DatasetWithTransform]) -> None:
        self.test = value

    def log_summary(self, logger: logging.Logger) -> None:
        """Log what the organizer holds: each split's size, parts and transforms.

        Example:
            >>> import logging
            >>> DataOrganizer(test=[{"name": "t", "dataset": [{"x": 1}]}]).log_summary(
            ...     logging.getLogger("espnet3.example"))
        """
        logger.info("Data organizer: %s", build_qualified_name(self))
        logger.info("preprocessor: %s", _callable_name(self.preprocessor))
        for split in ("train", "valid"):
            dataset = getattr(self, split, None)
            logger.info("%s dataset: %s", split, _describe(dataset))
            for i, part in enumerate(getattr(dataset, "parts", ())):
                logger.info("%s dataset part %d: %s", split, i, _describe(part))
        logger.info("test datasets: %d", len(self.test_sets))
        for name, dataset in self.test_sets.items():
            logger.info("test[%s] dataset: %s", name, _describe(dataset))
            logger.info("test[%s] dataset detail: %s", name, _describe(dataset.dataset))

    @property
    def use_espnet_collator(self) -> bool:
        """Whether items are ``(uid, sample)``; setting it applies to train, valid and test."""
        return self._use_espnet_collator

    @use_espnet_collator.setter
    def use_espnet_collator(self, value: bool) -> None:
        self._use_espnet_collator = bool(value)
        for dataset in (self.train, self.valid, *self.test.values()):
            if dataset is not None:
                dataset.use_espnet_collator = self._use_espnet_collator

    def _dataset(self, cfg: DatasetConfig) -> Any:
        return instantiate_dataset_reference(cfg.entry(), recipe_dir=self.recipe_dir)

    def _pipeline(self, cfg: DatasetConfig) -> tuple[Callable | None, Callable | None]:
        return instantiate(cfg.transform), self.preprocessor

    def _combine(self, entries: list[DatasetConfig] | None) -> CombinedDataset | None:
        if entries is None:
            return None
        return CombinedDataset(
            [self._dataset(cfg) for cfg in entries], [self._pipeline(cfg) for cfg in entries]
        )


def _describe(dataset: Any) -> str:
    """A dataset's class and length, with the transform and preprocessor it applies."""
    if dataset is None:
        return "None"
    text = build_qualified_name(dataset)
    with contextlib.suppress(TypeError):
        text += f" (len={len(dataset)})"
    for label in ("transform", "preprocessor"):
        if getattr(dataset, label, None) is not None:
            text += f" {label}={_callable_name(getattr(dataset, label))}"
    return text


def _callable_name(fn: Any) -> str:
    return "None" if fn is None else build_callable_name(fn)


def _preprocessor(value: Any) -> Callable | None:
    preprocessor = instantiate(value)
    if preprocessor is not None and not callable(preprocessor):
        raise ContractError(
            f"dataset.preprocessor must be callable, got {type(preprocessor).__name__} "
            f"{preprocessor!r}: give a _target_ config of a callable class, or a dotted name"
        )
    return preprocessor


def organizer_class(target: Any) -> Any:
    """The organizer class a section's ``_target_`` names (a dotted name, or the class)."""
    if callable(target):
        return target
    if not isinstance(target, str):
        raise ConfigError(f"dataset._target_ must be a dotted class name, got {target!r}")
    return import_object(target)


__all__ = [
    "CombinedDataset",
    "DataOrganizer",
    "DatasetConfig",
    "DatasetWithTransform",
    "ShardedDataset",
    "do_nothing",
    "instantiate_dataset_reference",
    "organizer_class",
    "parse_sections",
]
