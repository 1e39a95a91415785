"""Feature statistics of a dataset split: what ESPnet's feature normalisation is fitted on.

For each batch, items are collated and passed to ``model.collect_feats(**batch)``; every
returned array ``key`` (with ``key_lengths`` giving valid frames, else one frame per item)
adds to the per-dimension sum, sum of squares and frame count. The batches run through a
runner, so the same call is sequential, or on the Dask cluster of ``parallel_config`` (each
worker builds the model and dataset once). ``<output_dir>/<mode>/`` then holds, as ESPnet2's
``collect_stats`` writes them:

- ``<key>_stats.npz`` with ``count``, ``sum`` and ``sum_square``, and ``stats_keys``;
- ``<key>_shape``: ``uid shape`` lines (``T,D``), the shape files ESPnet2 samplers read;
- with ``write_collected_feats``, ``collect_feats/<key>.scp`` naming one ``.npy`` per item
  (written by the worker that computed it, so arrays never travel through the scheduler).

Example (``my.models.Frontend`` has ``collect_feats``)::

    collect_stats(model_config={"_target_": "my.models.Frontend"},
                  dataset_config=cfg.dataset, dataloader_config=cfg.dataloader,
                  mode="train", output_dir="exp/stats", batch_size=8)
    np.load("exp/stats/train/feats_stats.npz")["count"]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.errors import ConfigError, MissingMethodError, SetupError
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.provider import EnvironmentProvider
from espnet3.utils.atomic import atomic_open, atomic_write_bytes, atomic_write_text
from espnet3.utils.config import as_mapping, check_positive, to_plain
from espnet3.utils.imports import import_object, instantiate


@dataclass
class BatchStats:
    """Sums, sums of squares, frame counts and shapes of one or more batches, per feature key."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)
    squares: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: ``{key: [(uid, "T,D"), ...]}`` in item order.
    shapes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: ``{key: [(uid, path to .npy), ...]}`` when features were written.
    feats: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, key: str, uid: str, seq: np.ndarray) -> None:
        """Add the frames ``seq`` (frames on axis 0) of item ``uid``."""
        seq = np.asarray(seq, dtype=np.float64)
        self.sums[key] = self.sums.get(key, 0) + seq.sum(axis=0)
        self.squares[key] = self.squares.get(key, 0) + (seq**2).sum(axis=0)
        self.counts[key] = self.counts.get(key, 0) + len(seq)
        self.shapes.setdefault(key, []).append((uid, ",".join(map(str, seq.shape))))

    def merge(self, other: BatchStats) -> None:
        """Add ``other``'s statistics to these (batches merged in order)."""
        for key in other.counts:
            self.sums[key] = self.sums.get(key, 0) + other.sums[key]
            self.squares[key] = self.squares.get(key, 0) + other.squares[key]
            self.counts[key] = self.counts.get(key, 0) + other.counts[key]
            self.shapes.setdefault(key, []).extend(other.shapes[key])
        for key, entries in other.feats.items():
            self.feats.setdefault(key, []).extend(entries)


def collect_stats_batch(
    idxs: Sequence[int],
    model: Any = None,
    dataset: Any = None,
    collate_fn: Any = None,
    device: Any = None,
    write_collected_feats: bool = False,
    collect_stats_kwargs: Mapping[str, Any] | None = None,
    feats_dir: str | os.PathLike | None = None,
) -> BatchStats:
    """The statistics of items ``idxs`` of ``dataset`` (and, with a ``feats_dir``, their arrays).

    Items are ``(uid, sample)`` pairs (a dataset in ESPnet-collator mode) or samples, whose
    uid is then the index. ``collate_fn`` must return ``(uids, {name: tensor})``.
    """
    import torch

    items = [_with_uid(i, dataset[i]) for i in idxs]
    batch = collate_fn(items)
    if not isinstance(batch, Sequence) or len(batch) != 2:
        raise SetupError(
            "collect_stats expects the collate function to return (uids, batch_dict), got "
            f"{type(batch).__name__}: use CommonCollateFn or a collate_fn of that shape"
        )
    uids, tensors = batch
    if not isinstance(tensors, Mapping):
        raise SetupError(
            "collect_stats expects collate_fn to return a mapping for batch tensors, got "
            f"{type(tensors).__name__}: return (uids, {{name: tensor}})"
        )
    extra = dict(collect_stats_kwargs or {})
    clash = sorted(set(extra) & set(tensors))
    if clash:
        raise ConfigError(
            f"collect_stats kwargs conflict with batch tensors: {', '.join(clash)}; rename them"
        )
    tensors = {k: v.to(device) if hasattr(v, "to") else v for k, v in tensors.items()}
    with torch.no_grad():
        feats = model.collect_feats(**tensors, **extra)
    arrays = {
        k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        for k, v in feats.items()
    }
    stats = BatchStats()
    for b, uid in enumerate(uids):
        for key, values in arrays.items():
            lengths = arrays.get(f"{key}_lengths")
            seq = values[b][: int(lengths[b])] if lengths is not None else values[b][None]
            stats.add(key, uid, seq)
            if write_collected_feats and feats_dir is not None:
                path = Path(feats_dir) / f"data_{key}" / f"{uid}.npy"
                atomic_write_bytes(path, _npy_bytes(seq), durable=False)
                stats.feats.setdefault(key, []).append((uid, str(path)))
    return stats


class CollectStatsProvider(EnvironmentProvider):
    """The environment of a collect-stats run: one split's dataset, the collate and the model.

    ``config`` holds ``model_config``, ``dataset_config``, ``dataloader_config``, ``mode``,
    ``task`` (an ESPnet2 task class path, or ``None`` to instantiate ``model_config``) and
    ``batch_size``; ``batches`` is the split's batch plan, the same in every process.
    """

    def build_env(self) -> dict[str, Any]:
        import torch

        cfg = self.config
        collate_fn = _build_collate_fn(cfg.get("dataloader_config"))
        dataset = _instantiate_dataset(cfg.dataset_config, cfg.mode)
        if hasattr(dataset, "use_espnet_collator"):  # batches then carry the real ids
            dataset.use_espnet_collator = True
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = _build_model(cfg)
        model = model.to(device) if hasattr(model, "to") else model
        model = model.eval() if hasattr(model, "eval") else model
        return {
            "dataset": dataset,
            "model": model,
            "collate_fn": collate_fn,
            "device": device,
            "batches": _chunk_indices(len(dataset), cfg.batch_size),
            **self.params,
        }


class CollectStatsRunner(BaseRunner):
    """Runs :func:`collect_stats_batch` on batch number ``idx`` of the batch plan."""

    @staticmethod
    def forward(
        idx: int, *, dataset: Any, model: Any, batches: list[list[int]], **env: Any
    ) -> BatchStats:
        return collect_stats_batch(batches[idx], model=model, dataset=dataset, **env)


def collect_stats(
    model_config: Any,
    dataset_config: Any,
    dataloader_config: Any,
    mode: str,
    output_dir: str | os.PathLike,
    task: str | None = None,
    parallel_config: Any = None,
    write_collected_feats: bool = False,
    batch_size: int = 4,
) -> None:
    """Write the statistics of split ``mode`` under ``output_dir/mode`` (module docstring).

    ``parallel_config`` runs the batches on that cluster for this call (default: the
    :func:`espnet3.parallel.set_parallel` one).
    """
    from espnet3.parallel import get_parallel_config, set_parallel

    loader = as_mapping(dataloader_config, "dataloader")
    if "multiple_iterator" in as_mapping(loader.get(mode), f"dataloader.{mode}"):
        raise SetupError(
            f"dataloader.{mode}.multiple_iterator is not supported: shard the dataset "
            "(ShardedDataset) or point it at one split, and run collect_stats on that"
        )
    n_batches = len(_chunk_indices(len(_instantiate_dataset(dataset_config, mode)), batch_size))
    out = Path(output_dir) / mode
    config = {
        "model_config": to_plain(model_config),
        "dataset_config": to_plain(dataset_config),
        "dataloader_config": loader,
        "mode": mode,
        "task": task,
        "batch_size": batch_size,
    }
    feats_dir = str((out / "collect_feats").resolve())
    params = {"write_collected_feats": write_collected_feats, "feats_dir": feats_dir}
    previous = get_parallel_config()
    if parallel_config is not None:
        set_parallel(parallel_config)
    try:
        runner = CollectStatsRunner(CollectStatsProvider(config, params))
        total = BatchStats()
        for _, stats in runner.iter(range(n_batches)):
            total.merge(stats)
    finally:
        set_parallel(previous)
    _write(out, total)


def _write(out: Path, stats: BatchStats) -> None:
    for key in stats.counts:
        payload = _npz_bytes(
            count=stats.counts[key], sum=stats.sums[key], sum_square=stats.squares[key]
        )
        atomic_write_bytes(out / f"{key}_stats.npz", payload)
        with atomic_open(out / f"{key}_shape") as f:
            f.writelines(f"{uid} {shape}\n" for uid, shape in stats.shapes[key])
    for key, entries in stats.feats.items():
        with atomic_open(out / "collect_feats" / f"{key}.scp") as f:
            f.writelines(f"{uid} {path}\n" for uid, path in entries)
    atomic_write_text(out / "stats_keys", "".join(f"{key}\n" for key in stats.counts))


def _with_uid(index: int, item: Any) -> tuple[str, Any]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return item
    return str(index), item


def _build_collate_fn(dataloader_config: Any) -> Any:
    collate = instantiate(as_mapping(dataloader_config, "dataloader").get("collate_fn"))
    if collate is None:
        from espnet3.components.data.collate import CommonCollateFn

        collate = CommonCollateFn(int_pad_value=-1)
    return collate


def _build_model(config: Any) -> Any:
    """The model of ``config.model_config`` (through ESPnet2's ``task`` when one is named)."""
    cfg = as_mapping(config, "collect_stats config")
    model_config = as_mapping(cfg.get("model_config"), "model_config")
    if cfg.get("task"):
        task = import_object(cfg["task"])
        argv, sys.argv = sys.argv, ["collect_stats"]  # get_default_config parses sys.argv
        try:
            defaults = task.get_default_config()
        finally:
            sys.argv = argv
        model = task.build_model(argparse.Namespace(**{**defaults, **model_config}))
    else:
        model = instantiate(model_config)
    if not callable(getattr(model, "collect_feats", None)):
        raise MissingMethodError(
            f"Model {type(model).__name__} is missing required callable 'collect_feats' "
            "method: collect_stats calls model.collect_feats(**batch); add it"
        )
    return model


def _chunk_indices(num_items: int, batch_size: int) -> list[list[int]]:
    """``range(num_items)`` in consecutive batches of ``batch_size``."""
    if batch_size is None:
        raise ConfigError("batch_size must be a positive integer, got None")
    check_positive("batch_size", batch_size)
    return [list(range(i, min(i + batch_size, num_items))) for i in range(0, num_items, batch_size)]


def _instantiate_dataset(dataset_config: Any, mode: str) -> Any:
    """Split ``mode`` of the organizer ``dataset_config`` describes."""
    from espnet3.components.data.data_organizer import DataOrganizer

    dataset = getattr(DataOrganizer.from_config(dataset_config), mode, None)
    if dataset is None or isinstance(dataset, Mapping):  # ``test`` is a mapping of sets
        raise ConfigError(
            f"the dataset organizer does not provide split {mode!r}: add dataset.{mode}, or "
            "collect statistics of another split"
        )
    return dataset


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_bytes(**arrays: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
