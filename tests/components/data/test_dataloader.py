"""DataLoaderBuilder: per-mode batching, samplers, shuffle, and shards over a real process group."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch.multiprocessing
from torch.utils.data import BatchSampler, SequentialSampler

from espnet3.components.data.collate import CommonCollateFn
from espnet3.components.data.data_organizer import DataOrganizer
from espnet3.components.data.dataloader import DataLoaderBuilder
from espnet3.components.data.dataset import CombinedDataset, ShardedDataset
from espnet3.errors import ConfigError, SetupError


def items(n, start=0):
    return [{"x": np.arange(1 + (i % 3), dtype=np.float32), "i": start + i} for i in range(n)]


class Chunks(ShardedDataset):
    """Shard k holds items k, k+total, k+2*total, ..."""

    def __init__(self, data, total_shards=4, dist_world_size=2):
        self.data = data
        self.total_shards = total_shards
        self.dist_world_size = dist_world_size

    def shard(self, idx):
        return Chunks(self.data[idx :: self.total_shards], self.total_shards, self.dist_world_size)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


class PairBatches(BatchSampler):
    """A batch sampler built from the dataset, as configs instantiate it."""

    def __init__(self, dataset, size=2):
        super().__init__(SequentialSampler(dataset), size, drop_last=False)


def seen(loader):
    return [int(i) for _, batch in loader for i in batch["i"]]


def loaders(section, dataset, **kwargs):
    return DataLoaderBuilder(dataset, {"dataloader": section}, **kwargs)


def test_train_and_valid_batches_are_padded_espnet_style():
    org = DataOrganizer(train=[{"dataset": items(5)}], valid=[{"dataset": items(2)}])
    section = {
        "collate_fn": {"_target_": "espnet3.components.data.collate.CommonCollateFn"},
        "train": {"batch_size": 2},
        "valid": {"batch_size": 4},
    }
    builder = loaders(section, org)
    batches = list(builder.build("train"))
    assert [uids for uids, _ in batches] == [["0", "1"], ["2", "3"], ["4"]]
    first = batches[0][1]
    assert first["x"].tolist() == [[0.0, 0.0], [0.0, 1.0]] and first["x_lengths"].tolist() == [1, 2]
    assert [len(uids) for uids, _ in builder.build("valid")] == [2]


def test_without_a_collate_fn_torch_default_collate_batches_dicts():
    same = [{"x": np.ones(3, dtype=np.float32), "i": i} for i in range(4)]
    batch = next(
        iter(loaders({"train": {"batch_size": 4}}, CombinedDataset([same])).build("train"))
    )
    assert batch["x"].shape == (4, 3) and batch["i"].tolist() == [0, 1, 2, 3]


def test_shuffle_is_honoured_and_reproducible_per_epoch():
    data = CombinedDataset([items(40)])
    section = {"train": {"batch_size": 8, "shuffle": True, "seed": 3}}
    collate = CommonCollateFn()
    epoch0 = seen(loaders(section, data, collate_fn=collate, epoch=0).build("train"))
    assert sorted(epoch0) == list(range(40)) and epoch0 != list(range(40))
    assert seen(loaders(section, data, collate_fn=collate, epoch=0).build("train")) == epoch0
    assert seen(loaders(section, data, collate_fn=collate, epoch=1).build("train")) != epoch0
    plain = loaders({"train": {"batch_size": 8}}, data, collate_fn=collate)
    assert seen(plain.build("train")) == list(range(40))


def test_sampler_and_batch_sampler_from_config():
    data = {"train": CombinedDataset([items(5)]), "valid": CombinedDataset([items(3)])}
    section = {
        "train": {"sampler": {"_target_": "torch.utils.data.SequentialSampler"}, "batch_size": 5},
        "valid": {
            "batch_sampler": {"_target_": f"{__name__}.PairBatches", "size": 2},
            "drop_last": False,
        },
    }
    builder = loaders(section, data, collate_fn=CommonCollateFn())
    assert seen(builder.build("train")) == [0, 1, 2, 3, 4]
    assert [len(u) for u, _ in builder.build("valid")] == [2, 1]
    # Upstream ESPnet3 configs put the sampler beside the dataloader section.
    top = DataLoaderBuilder(
        data["valid"],
        {
            "dataloader": {"valid": {"batch_size": None}},
            "batch_sampler": {"_target_": f"{__name__}.PairBatches"},
        },
        collate_fn=CommonCollateFn(),
    )
    assert [len(u) for u, _ in top.build("valid")] == [2, 1]


@pytest.mark.parametrize(
    ("section", "error", "message"),
    [
        (
            {"train": {"batchsize": 2}},
            ConfigError,
            "dataloader.train: unknown key 'batchsize' (did you mean 'batch_size'?)",
        ),
        (
            {"train": {"batch_sampler": {"_target_": "x.Y"}, "batch_size": 2, "shuffle": True}},
            ConfigError,
            "dataloader.train: batch_sampler decides batching, so batch_size, shuffle cannot be set with it",
        ),
        (
            {"train": {"sampler": {"_target_": "x.Y"}, "shuffle": True}},
            ConfigError,
            "dataloader.train: shuffle: true and a sampler exclude each other",
        ),
        (
            {
                "train": {
                    "sampler": {"_target_": "torch.utils.data.SequentialSampler"},
                    "batch_sampler": {"_target_": f"{__name__}.PairBatches"},
                }
            },
            AssertionError,
            "Cannot specify both sampler and batch_sampler",
        ),
        ({"train": 3}, ConfigError, "dataloader.train must be a mapping"),
        (
            {"train": {"multiple_iterator": False}},
            RuntimeError,
            "multiple_iterator is not supported",
        ),
        ({"trian": {}}, ConfigError, "dataloader.train is not configured (did you mean 'trian'?)"),
        (
            {"train": {"sampler": {"kind": "x"}}},
            ConfigError,
            "dataloader.train.sampler needs a _target_",
        ),
        (
            {"train": {"sampler": {"_target_": "no_such_q.S"}}},
            ConfigError,
            "dataloader.train.sampler: cannot build 'no_such_q.S'",
        ),
        (
            {"train": {"iter_factory": {"_target_": "a.MultipleIterFactory", "batches": {}}}},
            SetupError,
            "a.MultipleIterFactory is not supported",
        ),
    ],
)
def test_bad_configs_are_explained_when_the_loader_is_built(section, error, message):
    builder = loaders(section, CombinedDataset([items(2)]))
    with pytest.raises(error) as err:
        builder.build("train")
    assert message in str(err.value)


def test_a_mode_without_its_dataset_is_explained():
    builder = loaders({"valid": {}}, {"train": CombinedDataset([items(1)]), "valid": None})
    with pytest.raises(ConfigError, match="dataloader.valid is configured but there is no valid"):
        builder.build("valid")
    with pytest.raises(AssertionError, match="collate_fn must be callable, got 3"):
        loaders({"collate_fn": 3}, None)


def test_sharding_checks_on_one_device():
    with pytest.raises(SetupError, match=r"dist_world_size must match .*configured 2, got 1"):
        loaders({"train": {}}, CombinedDataset([Chunks(items(4))])).build("train")
    loader = loaders(
        {"train": {"batch_size": 8}},
        CombinedDataset([Chunks(items(8), 4, 1)]),
        collate_fn=CommonCollateFn(),
        epoch=1,
    )
    assert seen(loader.build("train")) == [1, 5]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, port: int, out_dir: str) -> None:
    """One rank of a real two-process gloo group: which items each epoch's loader reads."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        report = {}
        for epoch in (0, 1):
            data = CombinedDataset([Chunks(items(16))])
            builder = DataLoaderBuilder(
                data,
                {"dataloader": {"train": {"batch_size": 16}}},
                collate_fn=CommonCollateFn(),
                num_device=2,
                epoch=epoch,
            )
            report[f"epoch{epoch}"] = seen(builder.build("train"))
        odd = CombinedDataset([Chunks(items(6), total_shards=3)])
        try:
            DataLoaderBuilder(odd, {"dataloader": {"train": {}}}, num_device=2).build("train")
        except SetupError as err:
            report["odd"] = str(err)
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(report, f)
    finally:
        dist.destroy_process_group()


def test_shards_rotate_per_epoch_and_rank_in_a_real_process_group(tmp_path):
    torch.multiprocessing.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2)
    by = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert by[0]["epoch0"] == [0, 4, 8, 12] and by[1]["epoch0"] == [1, 5, 9, 13]
    assert by[0]["epoch1"] == [2, 6, 10, 14] and by[1]["epoch1"] == [3, 7, 11, 15]
    assert "total_shards must be divisible by world_size (3 shards over 2 ranks" in by[0]["odd"]


def test_each_modes_loader_is_logged_once_with_its_batching(caplog):
    import espnet3.components.data.dataloader as module

    module._LOGGED_DATALOADER.clear()
    organizer = DataOrganizer(train=[{"dataset": items(5)}], valid=[{"dataset": items(2)}])
    builder = DataLoaderBuilder(organizer, {"dataloader": {"train": {"batch_size": 2}}})
    with caplog.at_level("INFO", logger="espnet3.components.data.dataloader"):
        builder.build("train")
        builder.build("train")  # the next epoch's loader: not logged again
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count("DataLoader[train] class: torch.utils.data.dataloader.DataLoader") == 1
    assert "DataLoader[train] batch_size: 2" in lines
    assert "DataLoader[train] num_workers: 0" in lines


def test_an_organizer_summary_names_each_split_its_size_and_transform(caplog):
    import logging

    def lower(sample):
        return sample

    organizer = DataOrganizer(
        train=[{"dataset": items(5)}, {"dataset": items(3, start=5)}],
        valid=[{"dataset": items(2)}],
        test=[{"name": "eval", "dataset": items(4), "transform": lower}],
    )
    with caplog.at_level("INFO", logger="summary"):
        organizer.log_summary(logging.getLogger("summary"))
    text = caplog.text
    assert "train dataset: espnet3.components.data.dataset.CombinedDataset (len=8)" in text
    assert "train dataset part 1:" in text and "valid dataset:" in text
    assert "test datasets: 1" in text and "test[eval] dataset:" in text
    assert "transform=" in text and "lower" in text
