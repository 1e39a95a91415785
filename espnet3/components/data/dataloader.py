"""Build the loader of one mode (``train``, ``valid``) from the ``dataloader:`` config.

```yaml
dataloader:
  collate_fn: {_target_: espnet3.components.data.collate.CommonCollateFn}  # default: torch's
  train:
    batch_size: 4
    shuffle: true            # reshuffled each epoch, reproducibly from seed + epoch
    num_workers: 2           # any other torch DataLoader argument is passed on
  valid:
    batch_sampler: {_target_: my_project.samplers.LengthBuckets, max_frames: 20000}
```

A ``sampler`` or ``batch_sampler`` is a Hydra config instantiated with the dataset as its
first argument (per mode, or at the top level of the config for every mode). An
``iter_factory`` entry builds an ESPnet2 iterator factory instead of a DataLoader: its
``batches`` go to ESPnet2's ``build_batch_sampler`` and with several devices every rank gets
an equal share. When the datasets of a mode are sharded (``total_shards`` set), each loader
reads one shard: rank ``r`` of ``w`` reads shard ``(epoch * w + r) % total_shards``, which is
why ``total_shards`` must be a multiple of ``w``. With a ``CommonCollateFn`` (ours or
ESPnet2's) the datasets are switched to ``use_espnet_collator`` so batches carry real ids.

Example:
    >>> from espnet3.components.data.collate import CommonCollateFn
    >>> from espnet3.components.data.dataset import CombinedDataset
    >>> import numpy as np
    >>> train = CombinedDataset([[{"x": np.arange(n)} for n in (1, 2, 3)]])
    >>> config = {"dataloader": {"train": {"batch_size": 2}}}
    >>> builder = DataLoaderBuilder(train, config, collate_fn=CommonCollateFn())
    >>> [uids for uids, batch in builder.build("train")]
    [['0', '1'], ['2']]
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from espnet3.errors import ConfigError, ContractError, SetupError, did_you_mean
from espnet3.utils.checks import as_mapping
from espnet3.utils.imports import instantiate
from espnet3.utils.logging_utils import build_qualified_name

log = logging.getLogger(__name__)
#: Labels whose loader was logged in this process (each is logged once, not every epoch).
_LOGGED_DATALOADER: set[str] = set()
#: Keys of a mode section that are not DataLoader arguments.
OWN_KEYS = ("seed", "sampler", "batch_sampler", "iter_factory")
# What torch refuses beside a batch sampler (it does the batching): key -> allowed values.
BATCH_SAMPLER_EXCLUSIVE = {
    "batch_size": (None, 1),
    "shuffle": (None, False),
    "drop_last": (None, False),
    "sampler": (None,),
}


class DataLoaderBuilder:
    """Make the loader of one mode for one epoch on this rank.

    Args:
        dataset: the dataset to load (e.g. ``organizer.train``), or an organizer / mapping
            with ``train`` and ``valid`` datasets, picked by mode.
        config: the whole config holding ``dataloader:`` (mapping or DictConfig), or that
            section itself.
        collate_fn: batches items; default the section's ``collate_fn``, else torch's.
        num_device: devices in the run; above 1, rank and world size come from
            ``torch.distributed`` (initialised by the trainer).
        epoch: the epoch the loader is for (shuffling and shard rotation).
    """

    def __init__(
        self,
        dataset: Any,
        config: Any,
        collate_fn: Callable | None = None,
        num_device: int = 1,
        epoch: int = 0,
    ):
        self.dataset = dataset
        self.config = as_mapping(config, "config")
        self.section = as_mapping(self.config.get("dataloader", self.config), "dataloader")
        self.collate_fn = collate_fn or instantiate(self.section.get("collate_fn"))
        if self.collate_fn is not None and not callable(self.collate_fn):
            raise ContractError(f"dataloader.collate_fn must be callable, got {self.collate_fn!r}")
        self.num_device = num_device
        self.epoch = epoch

    def build(self, mode: str) -> Any:
        """The loader of ``mode``: a DataLoader, or the iterator an ``iter_factory`` builds."""
        if mode not in self.section or mode == "collate_fn":
            modes = [k for k in self.section if k != "collate_fn"]
            raise ConfigError(
                f"dataloader.{mode} is not configured{did_you_mean(mode, modes)}: add a "
                f"dataloader.{mode} section (configured: {', '.join(modes) or 'none'})"
            )
        options = as_mapping(self.section[mode], f"dataloader.{mode}")
        if "multiple_iterator" in options:
            raise SetupError(
                f"dataloader.{mode}.multiple_iterator is not supported: to shard, make the "
                "datasets ShardedDatasets (one shard per rank and epoch) or point the dataset "
                "at one split, and use a standard loader or iter_factory"
            )
        rank, world_size = self._world()
        dataset = self._shard(self._dataset(mode), rank, world_size)
        factory = options.pop("iter_factory", None)
        if factory is not None:
            factory = as_mapping(factory, f"dataloader.{mode}.iter_factory")
            loader = self._iterator(factory, dataset, mode, rank, world_size)
        else:
            loader = self._loader(options, dataset, mode)
        log_dataloader(log, loader, label=mode)
        return loader

    def _loader(self, options: dict[str, Any], dataset: Any, mode: str) -> DataLoader:
        unknown = [k for k in options if k not in OWN_KEYS and k not in _loader_arguments()]
        if unknown:
            known = [*OWN_KEYS, *_loader_arguments()]
            raise ConfigError(
                f"dataloader.{mode}: unknown key '{unknown[0]}'"
                f"{did_you_mean(unknown[0], known)}; it takes torch DataLoader arguments and "
                f"{', '.join(OWN_KEYS)}"
            )
        sampler_config = options.pop("sampler", None) or self._top_level("sampler")
        batch_config = options.pop("batch_sampler", None) or self._top_level("batch_sampler")
        if sampler_config is not None and batch_config is not None:
            raise ContractError(
                f"dataloader.{mode}: Cannot specify both sampler and batch_sampler: keep one"
            )
        seed = options.pop("seed", 0)
        kwargs: dict[str, Any] = {"collate_fn": self.collate_fn}
        if batch_config is not None:
            clash = [k for k, ok in BATCH_SAMPLER_EXCLUSIVE.items() if options.get(k) not in ok]
            if clash:
                raise ConfigError(
                    f"dataloader.{mode}: batch_sampler decides batching, so {', '.join(clash)} "
                    "cannot be set with it; move those options into the batch_sampler config"
                )
            for key in BATCH_SAMPLER_EXCLUSIVE:
                options.pop(key, None)
            kwargs["batch_sampler"] = _sampler(batch_config, "batch_sampler", dataset, mode)
        elif sampler_config is not None:
            if options.pop("shuffle", False):
                raise ConfigError(
                    f"dataloader.{mode}: shuffle: true and a sampler exclude each other; let "
                    "the sampler shuffle (e.g. RandomSampler) or remove the sampler"
                )
            kwargs["sampler"] = _sampler(sampler_config, "sampler", dataset, mode)
        elif options.pop("shuffle", False):
            kwargs["generator"] = torch.Generator().manual_seed(seed + self.epoch)
            kwargs["shuffle"] = True
        if _is_common_collate(self.collate_fn) and hasattr(dataset, "use_espnet_collator"):
            dataset.use_espnet_collator = True
        return DataLoader(dataset, **kwargs, **options)

    def _iterator(
        self, factory: dict[str, Any], dataset: Any, mode: str, rank: int, world_size: int
    ) -> Any:
        from hydra.utils import instantiate as hydra_instantiate

        target = str(factory.get("_target_", ""))
        if not target:
            raise ConfigError(f"dataloader.{mode}.iter_factory needs a _target_ class")
        if "MultipleIterFactory" in target:
            raise SetupError(
                f"dataloader.{mode}.iter_factory: {target} is not supported: use a single "
                "iterator factory (Sequence/Chunk/Category) on one shard or split"
            )
        if "batches" not in factory:
            raise ConfigError(
                f"dataloader.{mode}.iter_factory needs batches: the build_batch_sampler "
                "arguments (type, shape_files, batch_size or batch_bins)"
            )
        batches = list(build_batch_sampler(**as_mapping(factory.pop("batches"), "batches")))
        if world_size > 1:
            # Every rank must see as many batches, or DDP waits forever at a barrier.
            batches = batches[: len(batches) - len(batches) % world_size]
            short = [b for b in batches if len(b) < world_size]
            if short:
                raise SetupError(
                    f"dataloader.{mode}: a batch of {len(short[0])} item(s) cannot be split "
                    f"over {world_size} devices: raise the batch size or batch_bins"
                )
            batches = batches[rank::world_size]
        iter_factory = hydra_instantiate(factory, dataset, batches=batches)
        return iter_factory.build_iter(self.epoch, shuffle=False)

    def _top_level(self, key: str) -> Any:
        """A sampler config beside the ``dataloader:`` section (upstream ESPnet3's place)."""
        return self.config.get(key) if "dataloader" in self.config else None

    def _dataset(self, mode: str) -> Any:
        holder = self.dataset
        if isinstance(holder, Mapping) or (
            mode in ("train", "valid") and hasattr(holder, "train") and hasattr(holder, "valid")
        ):
            holder = holder.get(mode) if isinstance(holder, Mapping) else getattr(holder, mode)
        if holder is None:
            raise ConfigError(
                f"dataloader.{mode} is configured but there is no {mode} dataset: add dataset.{mode}"
            )
        return holder

    def _world(self) -> tuple[int, int]:
        if self.num_device <= 1:
            return 0, 1
        try:
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        except (RuntimeError, ValueError) as err:  # no process group yet
            raise SetupError(
                f"num_device={self.num_device} but torch.distributed is not initialised "
                f"({err}): start the process group first (the trainer does), or use num_device=1"
            ) from None

    def _shard(self, dataset: Any, rank: int, world_size: int) -> Any:
        parts = getattr(dataset, "datasets", None) or [dataset]
        total = next(
            (t for p in parts if (t := getattr(p, "total_shards", None)) is not None), None
        )
        if total is None:
            return dataset
        missing = [type(p).__name__ for p in parts if not callable(getattr(p, "shard", None))]
        if missing or not callable(getattr(dataset, "shard", None)):
            raise SetupError(
                f"total_shards is set but shard() is not implemented by "
                f"{', '.join(missing) or type(dataset).__name__}: subclass ShardedDataset"
            )
        planned = getattr(parts[0], "dist_world_size", None)
        if isinstance(planned, bool) or not isinstance(planned, int) or planned < 1:
            raise SetupError(f"dist_world_size must be an integer >= 1, got {planned!r}")
        if planned != world_size:
            raise SetupError(
                f"dist_world_size must match the distributed world size (configured {planned}, "
                f"got {world_size}): set dist_world_size to the number of devices"
            )
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise SetupError(f"total_shards must be an integer >= 1, got {total!r}")
        if total % world_size:
            raise SetupError(
                f"total_shards must be divisible by world_size ({total} shards over {world_size} "
                "ranks would give two ranks the same shard): use a multiple of the world size"
            )
        return dataset.shard((self.epoch * world_size + rank) % total)


def _sampler(config: Any, key: str, dataset: Any, mode: str) -> Any:
    """Instantiate a sampler config with ``dataset`` as its first argument."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    config = as_mapping(config, f"dataloader.{mode}.{key}")
    if "_target_" not in config:
        raise ConfigError(f"dataloader.{mode}.{key} needs a _target_ naming the {key} class")
    try:
        return hydra_instantiate(config, dataset)
    except InstantiationException as err:
        raise ConfigError(
            f"dataloader.{mode}.{key}: cannot build {config['_target_']!r}: "
            f"{' '.join(str(err).split())}"
        ) from None


def build_batch_sampler(**kwargs: Any) -> Any:
    """ESPnet2's ``build_batch_sampler``, imported on first use (iter_factory needs ESPnet2).

    Example (with ESPnet2 installed)::

        batches = build_batch_sampler(type="unsorted", shape_files=["stats/shape"], batch_size=2)
    """
    try:
        from espnet2.samplers.build_batch_sampler import build_batch_sampler as espnet2_builder
    except ImportError as err:
        raise SetupError(
            f"dataloader iter_factory batches need ESPnet2 ({err}): install it (see the README, "
            "'ESPnet2 interop'), or use a standard DataLoader section (batch_size, sampler)"
        ) from None
    return espnet2_builder(**kwargs)


def log_dataloader(logger: logging.Logger, loader: Any, label: str) -> None:
    """Log a loader's class and batching (batch size, sampler, workers, collate) once per label.

    Example:
        >>> import logging
        >>> log_dataloader(logging.getLogger("espnet3.example"), DataLoader([1, 2]), "demo")
    """
    if label in _LOGGED_DATALOADER:
        return
    _LOGGED_DATALOADER.add(label)
    logger.info("DataLoader[%s] class: %s", label, build_qualified_name(loader))
    for key in ("batch_size", "num_workers", "drop_last", "pin_memory", "collate_fn"):
        if hasattr(loader, key):
            logger.info("DataLoader[%s] %s: %s", label, key, getattr(loader, key))
    for key in ("sampler", "batch_sampler"):
        if getattr(loader, key, None) is not None:
            logger.info("DataLoader[%s] %s: %r", label, key, getattr(loader, key))


@functools.cache
def _loader_arguments() -> frozenset[str]:
    return frozenset(inspect.signature(DataLoader).parameters) - {"dataset", "collate_fn"}


def _is_common_collate(collate_fn: Any) -> bool:
    from espnet3.components.data.collate import CommonCollateFn

    return isinstance(collate_fn, CommonCollateFn) or any(
        cls.__name__ == "CommonCollateFn" and cls.__module__.startswith("espnet2.")
        for cls in type(collate_fn).__mro__
    )
