"""The data-preparation part of upstream ESPnet3's training stages: ``collect_stats``.

``collect_stats(training_config)`` writes the feature statistics of the train and valid splits
under ``stats_dir``: through espnet3's shard runner
(:mod:`espnet3.components.data.collect_stats`), or, with an ``espnet2_stats:`` section, through
ESPnet2's own collector (:mod:`espnet3.components.data.espnet2_stats`). It reads ``model``
(``normalize``/``normalize_conf`` left out: the statistics are what they will be fitted on),
``dataset``, ``dataloader``, ``task``, ``stats_dir``, ``parallel``, ``seed``, and
``collect_stats_batch_size`` / ``collect_stats_train_mode`` (upstream's keys) or a
``collect_stats: {batch_size, train_mode, write_collected_feats}`` section. Training itself
(``train``) is not part of espnet3.

Example::

    collect_stats(OmegaConf.load("conf/training.yaml"))   # exp/stats/{train,valid}/...
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from espnet3.errors import OutsideScopeError
from espnet3.parallel.parallel import set_parallel
from espnet3.utils.checks import as_mapping, to_plain
from espnet3.utils.config_utils import get_required_config


def collect_stats(config: Any) -> None:
    """Feature statistics of ``config``'s train and valid splits (module docstring)."""
    from espnet3.components.data import collect_stats as stats

    for key in ("model", "dataset", "stats_dir"):
        get_required_config(config, key, f"collect_stats needs training_config.{key}: set it")
    if config.get("exp_dir"):
        Path(config.exp_dir).mkdir(parents=True, exist_ok=True)
    Path(config.stats_dir).mkdir(parents=True, exist_ok=True)
    if config.get("parallel"):
        set_parallel(config.parallel)
    if config.get("seed") is not None:
        _seed(int(config.seed))
    if config.get("espnet2_stats"):
        from espnet3.components.data.espnet2_stats import collect_stats_espnet2

        collect_stats_espnet2(config)
        return
    options = as_mapping(config.get("collect_stats"), "collect_stats")
    batch_size = options.get("batch_size", config.get("collect_stats_batch_size", 4))
    train_mode = options.get("train_mode", config.get("collect_stats_train_mode", False))
    model = {
        k: v for k, v in to_plain(config.model).items() if k not in ("normalize", "normalize_conf")
    }
    for mode in ("train", "valid"):
        stats.collect_stats(
            model_config=model,
            dataset_config=config.dataset,
            dataloader_config=config.get("dataloader") or {},
            mode=mode,
            output_dir=Path(config.stats_dir),
            task=config.get("task"),
            write_collected_feats=bool(options.get("write_collected_feats", False)),
            batch_size=int(batch_size),
            train_mode=bool(train_mode) and mode == "train",
        )


def train(config: Any) -> None:
    """Not a data-preparation stage: training is not part of espnet3."""
    raise OutsideScopeError("train")


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
