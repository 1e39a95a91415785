"""Build train/valid/test datasets from the ``dataset:`` section of a recipe config.

```yaml
dataset:
  train:                          # CombinedDataset; train and valid come together
    - data_src: mini_an4/asr      # a recipe's dataset package (see dataset_reference)
      data_src_args: {split: train}
  valid:
    - data_src_args: {split: valid}   # no data_src: <recipe_dir>/dataset
  test:                           # {name: DatasetWithTransform}
    - name: test_clean
      dataset: {_target_: my_project.datasets.Librispeech, split: test-clean}
      transform: {_target_: my_project.transforms.normalize, _partial_: true}
  preprocessor: {_target_: my_project.preprocess.Tokenize}
  use_espnet_collator: false      # true: items are (uid, sample)
```

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

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from espnet3.components.data.dataset import CombinedDataset, DatasetWithTransform, ShardedDataset
from espnet3.components.data.dataset_reference import resolve_dataset_module
from espnet3.errors import ConfigError
from espnet3.utils.config import as_mapping, check_keys, to_plain
from espnet3.utils.imports import import_object

SECTIONS = ("train", "valid", "test")
ORGANIZER_KEYS = (*SECTIONS, "preprocessor", "use_espnet_collator")


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """One entry of ``train``, ``valid`` or ``test``.

    ``dataset`` is a Hydra config (a mapping with ``_target_``) or a dataset object; without
    it the dataset is ``module.Dataset(**data_src_args)`` of the package ``data_src`` names
    (the recipe's own ``dataset/`` when ``data_src`` is absent). ``transform`` is a Hydra
    config, a dotted name or a callable.

    Example:
        >>> DatasetConfig.from_any({"data_src": "mini_an4/asr", "data_src_args": {"split": "test"}})
        DatasetConfig(name=None, dataset=None, data_src='mini_an4/asr', data_src_args={'split': 'test'}, transform=None)
    """

    name: str | None = None
    dataset: Any = None
    data_src: str | None = None
    data_src_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    transform: Any = None

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
        """True when the dataset comes from a dataset package (and so has a builder)."""
        return self.dataset is None

    def reference_key(self) -> str:
        """A string equal for entries that name the same package with the same arguments."""
        return json.dumps([self.data_src, self.data_src_args], sort_keys=True, default=str)

    def build_dataset(
        self,
        recipe_dir: str | os.PathLike | None = None,
        recipe_roots: Iterable[str | os.PathLike] | None = None,
    ) -> Any:
        """Instantiate the dataset this entry describes."""
        if not self.uses_reference:
            return instantiate(self.dataset)
        module = resolve_dataset_module(
            self.data_src, recipe_dir=recipe_dir, recipe_roots=recipe_roots
        )
        return module.Dataset(**self.data_src_args)

    def build_transform(self) -> Callable | None:
        """The transform callable, or ``None``."""
        return instantiate(self.transform)


def instantiate(value: Any) -> Any:
    """Build a Hydra ``_target_`` config; a dotted string is imported; anything else is kept.

    Example:
        >>> instantiate({"_target_": "builtins.dict", "a": 1})
        {'a': 1}
        >>> instantiate("os.path.basename")("/a/b")
        'b'
    """
    value = to_plain(value)
    if isinstance(value, str):
        return import_object(value)
    if isinstance(value, Mapping) and "_target_" in value:
        from hydra.utils import instantiate as hydra_instantiate

        return hydra_instantiate(value)
    return value


def parse_sections(config: Any, where: str = "dataset") -> dict[str, Any]:
    """Validate a ``dataset:`` section: known keys only, each entry a :class:`DatasetConfig`.

    Returns the section with ``train``/``valid``/``test`` as lists of :class:`DatasetConfig`.
    """
    data = as_mapping(config, where)
    check_keys(data, ORGANIZER_KEYS, where)
    for section in SECTIONS:
        entries = to_plain(data.get(section))
        if entries is None:
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

    Every item flows ``transform`` (per entry) then ``preprocessor`` (shared). ``recipe_dir``
    and ``recipe_roots`` resolve ``data_src`` references. Use :meth:`from_config` for a whole
    ``dataset:`` section.
    """

    def __init__(
        self,
        train: Iterable[Any] | None = None,
        valid: Iterable[Any] | None = None,
        test: Iterable[Any] | None = None,
        preprocessor: Any = None,
        *,
        use_espnet_collator: bool = False,
        recipe_dir: str | os.PathLike | None = None,
        recipe_roots: Iterable[str | os.PathLike] | None = None,
    ):
        sections = parse_sections(
            {k: v for k, v in (("train", train), ("valid", valid), ("test", test)) if v is not None}
        )
        if ("train" in sections) != ("valid" in sections):
            given, missing = ("train", "valid") if "train" in sections else ("valid", "train")
            raise ConfigError(
                f"dataset.{given} is set but dataset.{missing} is not: training needs both; "
                f"add a {missing} list, or remove {given} for test-only use"
            )
        self.preprocessor = instantiate(preprocessor)
        if self.preprocessor is not None and not callable(self.preprocessor):
            raise ConfigError(f"dataset.preprocessor must be callable, got {self.preprocessor!r}")
        self._recipe_dir = recipe_dir
        self._recipe_roots = list(recipe_roots or ())
        self.train = self._combine(sections.get("train"))
        self.valid = self._combine(sections.get("valid"))
        self.test: dict[str, DatasetWithTransform] = {}
        for i, cfg in enumerate(sections.get("test", [])):
            if not cfg.name:
                raise ConfigError(f"dataset.test[{i}] has no name: give every test set a name")
            if cfg.name in self.test:
                raise ConfigError(
                    f"dataset.test[{i}]: duplicate test set name {cfg.name!r}: give each test "
                    "set a unique name"
                )
            self.test[cfg.name] = self._wrap(cfg)
        self.use_espnet_collator = use_espnet_collator

    @classmethod
    def from_config(
        cls,
        config: Any,
        *,
        recipe_dir: str | os.PathLike | None = None,
        recipe_roots: Iterable[str | os.PathLike] | None = None,
    ) -> DataOrganizer:
        """Build from a ``dataset:`` mapping or DictConfig (unknown keys are errors)."""
        data = parse_sections(config)
        return cls(**data, recipe_dir=recipe_dir, recipe_roots=recipe_roots)

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

    def _wrap(self, cfg: DatasetConfig) -> DatasetWithTransform:
        dataset = cfg.build_dataset(self._recipe_dir, self._recipe_roots)
        return DatasetWithTransform(dataset, cfg.build_transform(), self.preprocessor)

    def _combine(self, entries: list[DatasetConfig] | None) -> CombinedDataset | None:
        if entries is None:
            return None
        return CombinedDataset([self._wrap(cfg) for cfg in entries])


__all__ = [
    "CombinedDataset",
    "DataOrganizer",
    "DatasetConfig",
    "DatasetWithTransform",
    "ShardedDataset",
    "instantiate",
    "parse_sections",
]
