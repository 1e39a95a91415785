"""DataLoaderBuilder: per-mode batching, samplers, shuffle and shard rotation."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import BatchSampler, SequentialSampler

from espnet3.components.data.data_organizer import DataOrganizer
from espnet3.components.data.dataloader import DataLoaderBuilder
from espnet3.components.data.dataset import CombinedDataset, ShardedDataset
from espnet3.errors import ConfigError


def items(n, start=0):
    return [{"x": np.arange(1 + (i % 3), dtype=np.float32), "i": start + i} for i in range(n)]


class Chunks(ShardedDataset):
    """Shard k holds items k, k+4, k+8, ..."""

    num_shards = 4

    def __init__(self, data):
        self.data = data

    def shard(self, idx):
        return Chunks(self.data[idx :: self.num_shards])

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


def test_train_and_valid_batches_are_padded_espnet_style():
    org = DataOrganizer(train=[{"dataset": items(5)}], valid=[{"dataset": items(2)}])
    builder = DataLoaderBuilder(org, {"train": {"batch_size": 2}, "valid": {"batch_size": 4}})
    batches = list(builder.build("train"))
    assert [uids for uids, _ in batches] == [["0", "1"], ["2", "3"], ["4"]]
    first = batches[0][1]
    assert first["x"].tolist() == [[0.0, 0.0], [0.0, 1.0]] and first["x_lengths"].tolist() == [1, 2]
    assert [len(uids) for uids, _ in builder.build("valid")] == [2]


def test_shuffle_is_honoured_and_reproducible_per_epoch():
    data = {"train": CombinedDataset([items(40)])}
    builder = DataLoaderBuilder(data, {"train": {"batch_size": 8, "shuffle": True, "seed": 3}})
    epoch0 = seen(builder.build("train", epoch=0))
    assert sorted(epoch0) == list(range(40)) and epoch0 != list(range(40))
    assert seen(builder.build("train", epoch=0)) == epoch0
    assert seen(builder.build("train", epoch=1)) != epoch0
    plain = DataLoaderBuilder(data, {"train": {"batch_size": 8}})
    assert seen(plain.build("train")) == list(range(40))


def test_sampler_and_batch_sampler_from_config():
    data = {"train": CombinedDataset([items(5)]), "valid": CombinedDataset([items(3)])}
    builder = DataLoaderBuilder(
        data,
        {
            "train": {
                "sampler": {"_target_": "torch.utils.data.SequentialSampler"},
                "batch_size": 5,
            },
            "valid": {"batch_sampler": {"_target_": f"{__name__}.PairBatches", "size": 2}},
        },
    )
    assert seen(builder.build("train")) == [0, 1, 2, 3, 4]
    assert [len(u) for u, _ in builder.build("valid")] == [2, 1]


def test_shards_rotate_per_epoch_and_rank():
    data = {"train": CombinedDataset([Chunks(items(16))])}
    builder = DataLoaderBuilder(data, {"train": {"batch_size": 16}})
    by = {
        (e, r): seen(builder.build("train", epoch=e, rank=r, world_size=2))
        for e in (0, 1)
        for r in (0, 1)
    }
    assert by[0, 0] == [0, 4, 8, 12] and by[0, 1] == [1, 5, 9, 13]
    assert by[1, 0] == [2, 6, 10, 14] and by[1, 1] == [3, 7, 11, 15]
    assert sorted(sum(by.values(), [])) == list(range(16))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"trian": {}}, "dataloader: unknown key 'trian' (did you mean 'train'?)"),
        (
            {"train": {"batchsize": 2}},
            "dataloader.train: unknown key 'batchsize' (did you mean 'batch_size'?)",
        ),
        (
            {"train": {"batch_sampler": {"_target_": "x.Y"}, "batch_size": 2, "shuffle": True}},
            "dataloader.train: batch_sampler decides batching, so batch_size, shuffle cannot be set with it",
        ),
        (
            {"train": {"sampler": {"_target_": "x.Y"}, "shuffle": True}},
            "dataloader.train: shuffle: true and a sampler exclude each other",
        ),
        ({"train": 3}, "dataloader.train must be a mapping"),
        ({"collate_fn": 3}, "dataloader.collate_fn must be callable, got 3"),
    ],
)
def test_bad_configs_are_explained(config, message):
    with pytest.raises(ConfigError) as err:
        DataLoaderBuilder({"train": CombinedDataset([items(1)])}, config)
    assert message in str(err.value)


def test_bad_build_requests_are_explained():
    builder = DataLoaderBuilder({"train": None}, {"train": {"sampler": {"kind": "x"}}})
    with pytest.raises(
        ConfigError, match="dataloader.valid is not configured: add a dataloader.valid section"
    ):
        builder.build("valid")
    with pytest.raises(ConfigError, match="mode must be one of train, valid, got 'test'"):
        builder.build("test")
    with pytest.raises(
        ConfigError, match="dataloader.train is configured but there is no train dataset"
    ):
        builder.build("train")
    builder.datasets = {"train": CombinedDataset([items(1)])}
    with pytest.raises(
        ConfigError, match="dataloader.train.sampler needs a _target_ naming the sampler class"
    ):
        builder.build("train")
