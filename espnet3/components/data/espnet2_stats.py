"""ESPnet2's own statistics collection on espnet3 datasets, in ESPnet2's arithmetic order.

``collect_stats`` adds statistics batch by batch; ESPnet2 adds them utterance by utterance
within a job, then job by job, over the contiguous key splits ``split_scp.pl`` makes. A recipe
moving from ESPnet2 whose ``GlobalMVN`` must match its old statistics to the last bit selects
this path with ``espnet2_stats: {nj: 32, batch_size: 20, num_workers: 1}`` in its training
config: each of the ``nj`` shards of the train and valid splits runs ESPnet2's
``collect_stats`` (data loading with ``num_workers`` processes), one after another in this
process, into ``<stats_dir>/logdir/stats.<n>``, and ESPnet2's ``aggregate_stats_dirs`` writes
``<stats_dir>/{train,valid}/`` in ESPnet2's layout. Training-time augmentation is off, as in
ESPnet2's statistics stage. It needs ESPnet2 installed.

Example (a training config with ``task``, ``model``, ``dataset``, ``stats_dir``)::

    config.espnet2_stats = {"nj": 4, "batch_size": 20}
    collect_stats_espnet2(config)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, SetupError
from espnet3.utils.checks import to_plain
from espnet3.utils.imports import instantiate
from espnet3.utils.task_utils import get_espnet_model


def collect_stats_espnet2(config: Any) -> None:
    """Write the statistics of ``config``'s train and valid splits as ESPnet2 computes them."""
    espnet2 = _espnet2()
    settings = config.espnet2_stats
    batch_size, nj = int(settings.batch_size), int(settings.nj)
    workers = int(settings.get("num_workers", 1))
    if min(batch_size, nj) < 1 or workers < 0:
        raise ConfigError(
            f"espnet2_stats needs positive batch_size and nj and a nonnegative num_workers, "
            f"got batch_size={batch_size}, nj={nj}, num_workers={workers}"
        )
    if not config.get("task"):
        raise TypeError("Native statistics require an ESPnet task: set training_config.task")
    organizer = instantiate(config.dataset)
    datasets = [organizer.train, organizer.valid]
    if any(dataset is None or len(dataset) == 0 for dataset in datasets):
        raise ConfigError("Native statistics require nonempty train and valid splits")
    nj = min(nj, *(len(dataset) for dataset in datasets))
    for dataset in datasets:
        if not dataset.use_espnet_preprocessor:
            raise TypeError(
                "Native statistics require ESPnet preprocessing: give the dataset an ESPnet2 "
                "preprocessor that takes (uid, sample)"
            )
        dataset.use_espnet_collator = True
        for _, preprocessor in dataset.transforms:
            if isinstance(preprocessor, espnet2.AbsPreprocessor):
                preprocessor.train = False
    model_config = {**to_plain(config.model), "normalize": None, "normalize_conf": {}}
    seed = int(config.get("seed", 0) or 0)
    espnet2.set_all_random_seed(seed)
    model = get_espnet_model(config.task, model_config).cpu().eval()
    output_dir = Path(config.stats_dir)
    shard_dirs = []
    for shard in range(nj):
        espnet2.set_all_random_seed(seed)
        loaders = [_shard_loader(espnet2, d, shard, nj, batch_size, workers) for d in datasets]
        directory = output_dir / "logdir" / f"stats.{shard + 1}"
        espnet2.collect_stats(
            model,
            *loaders,
            output_dir=directory,
            ngpu=0,
            log_interval=100,
            write_collected_feats=False,
        )
        shard_dirs.append(directory)
    espnet2.aggregate_stats_dirs(shard_dirs, output_dir, "INFO", False)


def _shard_loader(espnet2: Any, dataset: Any, shard: int, nj: int, batch_size: int, workers: int):
    """A DataLoader of shard ``shard`` of ``nj`` contiguous ones (``split_scp.pl``'s sizes)."""
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info

    size, extra = divmod(len(dataset), nj)
    start = shard * size + min(shard, extra)
    stop = start + size + int(shard < extra)

    class Shard(IterableDataset):  # each loader worker reads its stride, as ESPnet2's do
        def __iter__(self):
            worker = get_worker_info()
            first, step = (worker.id, worker.num_workers) if worker else (0, 1)
            for index in range(start + first, stop, step):
                yield dataset[index]

    return DataLoader(
        Shard(),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=espnet2.CommonCollateFn(int_pad_value=-1),
    )


def _espnet2() -> Any:
    """The ESPnet2 functions this stage calls, or an error saying ESPnet2 is needed."""
    from types import SimpleNamespace

    try:
        from espnet2.bin.aggregate_stats_dirs import aggregate_stats_dirs
        from espnet2.main_funcs.collect_stats import collect_stats
        from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
        from espnet2.train.collate_fn import CommonCollateFn
        from espnet2.train.preprocessor import AbsPreprocessor
    except ImportError as err:
        raise SetupError(
            f"espnet2_stats runs ESPnet2's own collect_stats, which cannot be imported here "
            f"({err}): install espnet (with torchaudio), or remove espnet2_stats to use "
            "espnet3's collect_stats"
        ) from None
    return SimpleNamespace(
        aggregate_stats_dirs=aggregate_stats_dirs,
        collect_stats=collect_stats,
        set_all_random_seed=set_all_random_seed,
        CommonCollateFn=CommonCollateFn,
        AbsPreprocessor=AbsPreprocessor,
    )
