"""Build train/valid ``torch.utils.data.DataLoader`` s from a ``dataloader:`` config.

```yaml
dataloader:
  collate_fn: {_target_: espnet3.components.data.collate.CommonCollateFn}   # the default
  train:
    batch_size: 4
    shuffle: true            # reshuffled each epoch, reproducibly from seed + epoch
    num_workers: 2
  valid:
    batch_sampler: {_target_: my_project.samplers.LengthBuckets, max_frames: 20000}
```

A ``sampler`` or ``batch_sampler`` entry is a Hydra config instantiated with the dataset as
its first argument (``RandomSampler(dataset)``, ``MyBatchSampler(dataset, **options)``). When
every dataset of a split is a :class:`~espnet3.components.data.dataset.ShardedDataset`, each
loader reads one shard: rank ``r`` of ``w`` reads shard ``(epoch * w + r) % num_shards``, so
ranks never read the same shard in an epoch and each rank moves on to new shards every epoch.
With the default :class:`~espnet3.components.data.collate.CommonCollateFn` the datasets are
switched to ``use_espnet_collator`` so that batches carry the items' real utterance ids.

Example:
    >>> from espnet3.components.data.dataset import CombinedDataset
    >>> import numpy as np
    >>> train = CombinedDataset([[{"x": np.arange(n)} for n in (1, 2, 3)]])
    >>> builder = DataLoaderBuilder({"train": train}, {"train": {"batch_size": 2}})
    >>> [uids for uids, batch in builder.build("train")]
    [['0', '1'], ['2']]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from espnet3.components.data.collate import CommonCollateFn
from espnet3.components.data.data_organizer import instantiate
from espnet3.errors import ConfigError
from espnet3.utils.config import as_mapping, check_keys

MODES = ("train", "valid")
MODE_KEYS = (
    "batch_size",
    "shuffle",
    "drop_last",
    "num_workers",
    "pin_memory",
    "seed",
    "sampler",
    "batch_sampler",
)
# Options torch refuses together with a batch sampler (it does the batching).
BATCH_SAMPLER_EXCLUSIVE = ("batch_size", "shuffle", "drop_last", "sampler")


class DataLoaderBuilder:
    """Make the loader of one mode (``train`` or ``valid``) for one epoch and rank.

    Args:
        datasets: a :class:`~espnet3.components.data.data_organizer.DataOrganizer` or a mapping
            with ``train``/``valid`` datasets.
        config: the ``dataloader:`` section (mapping or DictConfig); unknown keys are errors.
    """

    def __init__(self, datasets: Any, config: Any):
        self.datasets = datasets
        data = as_mapping(config, "dataloader")
        check_keys(data, ("collate_fn", *MODES), "dataloader")
        self.collate_fn = instantiate(data.get("collate_fn")) or CommonCollateFn()
        if not callable(self.collate_fn):
            raise ConfigError(f"dataloader.collate_fn must be callable, got {self.collate_fn!r}")
        self.modes: dict[str, dict[str, Any]] = {}
        for mode in MODES:
            if mode in data:
                self.modes[mode] = _check_mode(as_mapping(data[mode], f"dataloader.{mode}"), mode)

    def build(
        self, mode: str, epoch: int = 0, rank: int | None = None, world_size: int | None = None
    ) -> DataLoader:
        """The loader of ``mode`` for ``epoch``; rank and world size default to torch.distributed's."""
        if mode not in MODES:
            raise ConfigError(f"dataloader mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode not in self.modes:
            raise ConfigError(
                f"dataloader.{mode} is not configured: add a dataloader.{mode} section"
            )
        options = dict(self.modes[mode])
        dataset = self._dataset(mode)
        if rank is None or world_size is None:
            rank, world_size = _distributed_rank()
        if isinstance(self.collate_fn, CommonCollateFn) and hasattr(dataset, "use_espnet_collator"):
            dataset.use_espnet_collator = True
        if _is_sharded(dataset):
            dataset = dataset.shard((epoch * world_size + rank) % dataset.num_shards)
        seed = options.pop("seed", 0)
        kwargs: dict[str, Any] = {"collate_fn": self.collate_fn}
        if "batch_sampler" in options:
            kwargs["batch_sampler"] = instantiate_with(
                options.pop("batch_sampler"), dataset, mode, "batch_sampler"
            )
        elif "sampler" in options:
            kwargs["sampler"] = instantiate_with(options.pop("sampler"), dataset, mode, "sampler")
        elif options.pop("shuffle", False):
            kwargs["generator"] = torch.Generator().manual_seed(seed + epoch)
            kwargs["shuffle"] = True
        return DataLoader(dataset, **kwargs, **options)

    def _dataset(self, mode: str) -> Any:
        dataset = (
            self.datasets.get(mode)
            if isinstance(self.datasets, Mapping)
            else getattr(self.datasets, mode, None)
        )
        if dataset is None:
            raise ConfigError(
                f"dataloader.{mode} is configured but there is no {mode} dataset: add dataset.{mode}"
            )
        return dataset


def instantiate_with(config: Any, dataset: Any, mode: str, key: str) -> Any:
    """Instantiate a sampler config with ``dataset`` as its first argument."""
    from hydra.utils import instantiate as hydra_instantiate

    config = as_mapping(config, f"dataloader.{mode}.{key}")
    if "_target_" not in config:
        raise ConfigError(f"dataloader.{mode}.{key} needs a _target_ naming the {key} class")
    return hydra_instantiate(config, dataset)


def _check_mode(options: dict[str, Any], mode: str) -> dict[str, Any]:
    check_keys(options, MODE_KEYS, f"dataloader.{mode}")
    if "batch_sampler" in options:
        clash = [k for k in BATCH_SAMPLER_EXCLUSIVE if k in options]
        if clash:
            raise ConfigError(
                f"dataloader.{mode}: batch_sampler decides batching, so {', '.join(clash)} "
                "cannot be set with it; move those options into the batch_sampler config"
            )
    if "sampler" in options and options.get("shuffle"):
        raise ConfigError(
            f"dataloader.{mode}: shuffle: true and a sampler exclude each other; let the "
            "sampler shuffle (e.g. RandomSampler) or remove the sampler"
        )
    return options


def _is_sharded(dataset: Any) -> bool:
    return bool(getattr(dataset, "is_sharded", False))


def _distributed_rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
