"""Feature statistics of a dataset split: what ESPnet's feature normalisation is fitted on.

For each batch, items are collated and passed to ``model.collect_feats(**batch)``; every
returned array ``key`` (with ``key_lengths`` giving valid frames, else one frame per item)
adds to the per-dimension sum, sum of squares and frame count. The batches run through
:class:`CollectStatsRunner`, upstream ESPnet3's shard runner for this stage: each shard
``<output_dir>/<mode>/split.N`` writes its own shape file, features and sums (where it is
computed: arrays never travel), and ``merge`` adds them up. So the same call is sequential or
on the Dask cluster of ``parallel_config``, and a rerun resumes: only shards that are not done
run again (all of them when the stage's settings changed). ``<output_dir>/<mode>/`` then holds,
as ESPnet2's ``collect_stats`` writes them:

- ``<key>_stats.npz`` with ``count``, ``sum`` and ``sum_square``, and ``stats_keys``;
- ``<key>_shape``: ``uid shape`` lines (``T,D``), the shape files ESPnet2 samplers read;
- with ``write_collected_feats``, ``collect_feats/<key>.scp`` naming one ``.npy`` per item.

Example (``my.models.Frontend`` has ``collect_feats``)::

    collect_stats(model_config={"_target_": "my.models.Frontend"},
                  dataset_config=cfg.dataset, dataloader_config=cfg.dataloader,
                  mode="train", output_dir="exp/stats", batch_size=8)
    np.load("exp/stats/train/feats_stats.npz")["count"]
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.errors import ConfigError, MissingMethodError, SetupError
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.merge_files import concatenate_shard_files
from espnet3.runner.provider import EnvironmentProvider
from espnet3.runner.shard_dir import clear_done
from espnet3.runner.shard_plan import manifest_path
from espnet3.runner.shard_spec import read_record
from espnet3.utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from espnet3.utils.checks import as_mapping, check_positive, to_plain
from espnet3.utils.imports import instantiate
from espnet3.utils.task_utils import get_espnet_model


@dataclass
class BatchStats:
    """Sums, sums of squares, frame counts and shapes of one or more batches, per feature key."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)
    squares: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: ``{key: [(uid, "T,D"), ...]}`` in item order.
    shapes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: ``{key: [(uid, array), ...]}`` when the features themselves are kept.
    arrays: dict[str, list[tuple[str, np.ndarray]]] = field(default_factory=dict)

    def add(self, key: str, uid: str, seq: np.ndarray) -> None:
        """Add the frames ``seq`` (frames on axis 0) of item ``uid``."""
        seq = np.asarray(seq, dtype=np.float64)
        self.sums[key] = self.sums.get(key, 0) + seq.sum(axis=0)
        self.squares[key] = self.squares.get(key, 0) + (seq**2).sum(axis=0)
        self.counts[key] = self.counts.get(key, 0) + len(seq)
        self.shapes.setdefault(key, []).append((uid, ",".join(map(str, seq.shape))))

    def add_sums(self, key: str, count: int, sums: np.ndarray, squares: np.ndarray) -> None:
        """Add the totals of another run (a shard's ``<key>_stats.npz``)."""
        self.sums[key] = self.sums.get(key, 0) + sums
        self.squares[key] = self.squares.get(key, 0) + squares
        self.counts[key] = self.counts.get(key, 0) + int(count)


def collect_stats_batch(
    idxs: Sequence[int],
    model: Any = None,
    dataset: Any = None,
    collate_fn: Any = None,
    device: Any = None,
    write_collected_feats: bool = False,
    collect_stats_kwargs: Mapping[str, Any] | None = None,
) -> BatchStats:
    """The statistics of items ``idxs`` of ``dataset`` (with ``write_collected_feats``, their
    arrays too, in :attr:`BatchStats.arrays`).

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
            if write_collected_feats:
                stats.arrays.setdefault(key, []).append((uid, seq))
    return stats


class CollectStatsProvider(EnvironmentProvider):
    """The environment of a collect-stats run: one split's dataset, the collate and the model.

    ``config`` holds ``model_config``, ``dataset_config``, ``dataloader_config``, ``mode``,
    ``task`` (an ESPnet2 task class path, or ``None`` to instantiate ``model_config``) and
    ``train_mode``.
    """

    def build_env(self) -> dict[str, Any]:
        import torch

        cfg = self.config
        collate_fn = _build_collate_fn(cfg.get("dataloader_config"))
        dataset = _instantiate_dataset(cfg.dataset_config, cfg.mode)
        if hasattr(dataset, "use_espnet_collator"):  # batches then carry the real ids
            dataset.use_espnet_collator = True
        if not cfg.get("train_mode"):  # no random augmentation in the statistics
            for preprocessor in _preprocessors(dataset):
                preprocessor.train = False
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = _build_model(cfg)
        model = model.to(device) if hasattr(model, "to") else model
        model = model.eval() if hasattr(model, "eval") else model
        return {
            "dataset": dataset,
            "model": model,
            "collate_fn": collate_fn,
            "device": device,
            **self.params,
        }


def _preprocessors(dataset: Any) -> list[Any]:
    """The ESPnet preprocessors (objects with a ``train`` flag) of a dataset's parts."""
    pairs = getattr(dataset, "transforms", None) or [(None, getattr(dataset, "preprocessor", None))]
    return [p for _, p in pairs if p is not None and hasattr(p, "train")]


class CollectStatsRunner(BaseRunner):
    """Runs :func:`collect_stats_batch` on each batch (a list of indices) of split ``mode``.

    Its shards are ``<output_dir>/<mode>/split.N``; each holds ``<key>_shape``,
    ``<key>_stats.npz``, ``stats_keys.txt`` and, with ``write_collected_feats``,
    ``collect_feats/<key>.scp`` naming ``<output_dir>/<mode>/collect_feats/data_<key>/split.N/
    <uid>.npy`` (the arrays sit where ESPnet2 keeps them, one folder per shard). :meth:`merge`
    adds the sums up and concatenates the shape and scp files into ``<output_dir>/<mode>/``.

    Example (``provider`` a :class:`CollectStatsProvider`)::

        totals = CollectStatsRunner(provider, "exp/stats", "train")([[0, 1], [2, 3]])
        totals.counts["feats"]
    """

    def __init__(
        self,
        provider: EnvironmentProvider,
        output_dir: str | os.PathLike,
        mode: str,
        write_collected_feats: bool = False,
        **kwargs: Any,
    ):
        super().__init__(provider, output_dir=output_dir, shard_subdir=mode, **kwargs)
        self.mode = mode
        self.write_collected_feats = write_collected_feats

    @staticmethod
    def forward(
        batch_indices: Sequence[int] | int,
        *,
        dataset: Any,
        model: Any,
        collate_fn: Any,
        device: Any = None,
        write_collected_feats: bool = False,
        collect_stats_kwargs: Mapping[str, Any] | None = None,
        **env: Any,
    ) -> BatchStats:
        indices = [batch_indices] if isinstance(batch_indices, int) else list(batch_indices)
        return collect_stats_batch(
            indices, model, dataset, collate_fn, device, write_collected_feats, collect_stats_kwargs
        )

    @staticmethod
    def open_writers(shard_dir: Path, **env: Any) -> dict[str, Any]:
        for stale in shard_dir.parent.glob(f"collect_feats/data_*/{shard_dir.name}"):
            shutil.rmtree(stale)  # features of an earlier, unfinished run of this shard
        return {"shard_dir": shard_dir, "shapes": {}, "scps": {}}

    @staticmethod
    def write_record(
        writers: dict[str, Any], result: BatchStats, state: dict[str, Any], **env: Any
    ) -> None:
        """Add the batch's sums to the shard's, and write its shape lines and features."""
        totals = state.setdefault("totals", BatchStats())
        for key in result.counts:
            totals.add_sums(key, result.counts[key], result.sums[key], result.squares[key])
            shapes = writers["shapes"].get(key)
            if shapes is None:
                shapes = writers["shapes"][key] = open(
                    writers["shard_dir"] / f"{key}_shape", "w", encoding="utf-8"
                )
            shapes.writelines(f"{uid} {shape}\n" for uid, shape in result.shapes[key])
        shard_dir = writers["shard_dir"]
        for key, entries in result.arrays.items():
            folder = shard_dir.parent / "collect_feats" / f"data_{key}" / shard_dir.name
            scp = writers["scps"].get(key)
            if scp is None:
                folder.mkdir(parents=True, exist_ok=True)
                (shard_dir / "collect_feats").mkdir(exist_ok=True)
                scp = writers["scps"][key] = open(
                    shard_dir / "collect_feats" / f"{key}.scp", "w", encoding="utf-8"
                )
            for uid, array in entries:
                path = folder / f"{uid}.npy"
                atomic_write_bytes(path, _npy_bytes(array), durable=False)
                scp.write(f"{uid} {path.resolve()}\n")

    @staticmethod
    def close_writers(writers: dict[str, Any], state: dict[str, Any], **env: Any) -> None:
        """Close the shard's files and write its sums (``<key>_stats.npz``, ``stats_keys.txt``)."""
        for handle in (*writers["shapes"].values(), *writers["scps"].values()):
            handle.close()
        _write_sums(writers["shard_dir"], state.get("totals", BatchStats()), "stats_keys.txt")

    def merge(self, shard_dirs: list[Path]) -> BatchStats:
        """The split's totals; its shape and scp files concatenated under ``output_dir/mode``."""
        totals = BatchStats()
        for shard in shard_dirs:
            for key in _keys(shard / "stats_keys.txt"):
                with np.load(shard / f"{key}_stats.npz") as data:
                    totals.add_sums(key, data["count"], data["sum"], data["sum_square"])
        out = Path(self.output_dir) / self.mode
        for key in totals.counts:
            concatenate_shard_files(shard_dirs, f"{key}_shape", out / f"{key}_shape")
            if self.write_collected_feats:
                scp = f"collect_feats/{key}.scp"
                concatenate_shard_files(shard_dirs, scp, out / scp)
        return totals


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
    train_mode: bool = False,
) -> None:
    """Write the statistics of split ``mode`` under ``output_dir/mode`` (module docstring).

    ``parallel_config`` runs the batches on that cluster for this call (default: the
    :func:`espnet3.parallel.set_parallel` one). ``train_mode`` keeps the split's ESPnet
    preprocessor in training mode, so its random augmentation applies (off by default, as in
    ESPnet2).
    """
    from espnet3.parallel import get_parallel_config, use_parallel

    loader = as_mapping(dataloader_config, "dataloader")
    if "multiple_iterator" in as_mapping(loader.get(mode), f"dataloader.{mode}"):
        raise SetupError(
            f"dataloader.{mode}.multiple_iterator is not supported: shard the dataset "
            "(ShardedDataset) or point it at one split, and run collect_stats on that"
        )
    batches = _chunk_indices(len(_instantiate_dataset(dataset_config, mode)), batch_size)
    out = Path(output_dir) / mode
    config = {
        "model_config": to_plain(model_config),
        "dataset_config": to_plain(dataset_config),
        "dataloader_config": loader,
        "mode": mode,
        "task": task,
        "train_mode": train_mode,
    }
    params = {"write_collected_feats": write_collected_feats}
    with use_parallel(get_parallel_config() if parallel_config is None else parallel_config):
        runner = CollectStatsRunner(
            CollectStatsProvider(config, params), output_dir, mode, write_collected_feats
        )
        _forget_other_settings(out, {**config, **params, "plan": runner._plan_shards(batches)})
        totals = runner(batches) if batches else BatchStats()
    _write_sums(out, totals, "stats_keys")


def _forget_other_settings(out: Path, settings: dict[str, Any]) -> None:
    """Keep the finished shards in ``out`` only when they were made with these very settings
    (model, data, batches, shards); otherwise every shard runs again."""
    path = out / "collect_stats.json"
    settings = json.loads(json.dumps(settings, default=str))
    if read_record(path) == settings:
        return
    for shard in out.glob("split.*"):
        clear_done(shard)
    with contextlib.suppress(FileNotFoundError):
        manifest_path(out).unlink()
    atomic_write_json(path, settings)


def _write_sums(folder: Path, stats: BatchStats, keys_file: str) -> None:
    """``<key>_stats.npz`` of each key and the list of keys, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for key in stats.counts:
        payload = _npz_bytes(
            count=stats.counts[key], sum=stats.sums[key], sum_square=stats.squares[key]
        )
        atomic_write_bytes(folder / f"{key}_stats.npz", payload)
    atomic_write_text(folder / keys_file, "".join(f"{key}\n" for key in stats.counts))


def _keys(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.is_file() else []


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
        model = get_espnet_model(cfg["task"], model_config)
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
