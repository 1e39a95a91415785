"""CombinedDataset, DatasetWithTransform and ShardedDataset."""

from __future__ import annotations

import pytest

from espnet3.components.data.data_organizer import (
    CombinedDataset as ReexportedCombined,
)
from espnet3.components.data.dataset import CombinedDataset, DatasetWithTransform, ShardedDataset
from espnet3.components.data.preprocessor import AbsPreprocessor
from espnet3.errors import ConfigError


class Named:
    """A dataset with utterance ids, like a manifest-backed recipe dataset."""

    def __init__(self, prefix: str, n: int):
        self.items = [{"uid": f"{prefix}{i}", "v": i} for i in range(n)]
        self.reads = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        return self.items[i]

    def uids(self):
        return [item["uid"] for item in self.items]


class Stride(ShardedDataset):
    def __init__(self, items, num_shards=2):
        self.items = items
        self.num_shards = num_shards

    def shard(self, idx):
        return Stride(self.items[idx :: self.num_shards], self.num_shards)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return {"v": self.items[i]}


class TagUid(AbsPreprocessor):
    def __call__(self, uid, data):
        return {**data, "seen_uid": uid}


def test_lookup_across_boundaries_and_negative_indices():
    sizes = [3, 0, 1, 4]
    combined = CombinedDataset([[{"v": (d, i)} for i in range(n)] for d, n in enumerate(sizes)])
    expected = [(d, i) for d, n in enumerate(sizes) for i in range(n)]
    assert len(combined) == 8
    assert [combined[i]["v"] for i in range(8)] == expected
    assert [combined[-i]["v"] for i in range(1, 9)] == expected[::-1]
    assert combined.locate(3) == (2, 0)
    with pytest.raises(IndexError, match="index 8 out of range for CombinedDataset of length 8"):
        combined[8]
    with pytest.raises(IndexError, match="index -9 out of range"):
        combined[-9]
    with pytest.raises(TypeError, match="indices must be integers or utterance ids, not float"):
        combined[1.5]
    assert ReexportedCombined is CombinedDataset


def test_transform_then_preprocessor_and_uid_convention():
    part_a = DatasetWithTransform(
        Named("a", 2), transform=lambda s: {**s, "v": s["v"] + 10}, preprocessor=TagUid()
    )
    part_b = DatasetWithTransform(
        [{"uid": "x", "v": 5}], transform=lambda s: {**s, "v": s["v"] * 2}, preprocessor=TagUid()
    )
    combined = CombinedDataset([part_a, part_b])
    assert combined[1] == {"uid": "a1", "v": 11, "seen_uid": "a1"}
    # Without uids() the id is the global index.
    assert combined[2] == {"uid": "x", "v": 10, "seen_uid": "2"}
    combined.use_espnet_collator = True
    assert combined["a0"] == ("a0", {"uid": "a0", "v": 10, "seen_uid": "a0"})
    assert combined["2"][0] == "2"
    with pytest.raises(KeyError, match="utterance id 'zz' is in none of the 2 combined datasets"):
        combined["zz"]


def test_plain_preprocessor_gets_only_the_sample():
    ds = DatasetWithTransform(
        Named("u", 2), preprocessor=lambda s: {"only": s["v"]}, use_espnet_collator=True
    )
    assert ds[1] == ("u1", {"only": 1})
    assert ds["u0"] == ("u0", {"only": 0})
    with pytest.raises(KeyError, match="utterance id 'nope' is not in Named"):
        ds["nope"]
    with pytest.raises(ConfigError, match="preprocessor must be callable, got int 3"):
        DatasetWithTransform([], preprocessor=3)


def test_key_consistency_is_checked_once_on_first_items():
    first, second = Named("a", 3), Named("b", 3)
    combined = CombinedDataset([first, second])
    assert (first.reads, second.reads) == (1, 1)
    combined[4]
    assert second.reads == 2
    with pytest.raises(ConfigError) as err:
        CombinedDataset([[{"a": 1, "b": 2}], [], DatasetWithTransform([{"a": 1}])])
    assert str(err.value) == (
        "combined dataset 2 (list) gives items with keys ['a'] but dataset 0 gives ['a', 'b']: "
        "make their transforms return the same keys"
    )


def test_duplicate_uids_across_datasets_are_reported():
    combined = CombinedDataset([Named("a", 2), Named("a", 1)])
    with pytest.raises(ConfigError, match="utterance id 'a0' appears in combined datasets 0 and 1"):
        combined["a1"]


def test_sharding_all_sharded_datasets():
    combined = CombinedDataset(
        [Stride(list(range(6))), DatasetWithTransform(Stride([100, 101]), lambda s: {"v": -s["v"]})]
    )
    assert combined.is_sharded and combined.num_shards == 2
    shard = combined.shard(1)
    assert [shard[i]["v"] for i in range(len(shard))] == [1, 3, 5, -101]
    with pytest.raises(IndexError, match="shard 2 out of range: there are 2 shards"):
        combined.shard(2)


def test_sharding_mixed_or_mismatched_datasets_is_refused():
    mixed = CombinedDataset([Stride([1, 2]), [{"v": 3}]])
    assert not mixed.is_sharded
    with pytest.raises(
        ConfigError,
        match="cannot shard a combination of Stride, list .*every dataset must be a ShardedDataset",
    ):
        mixed.shard(0)
    with pytest.raises(ConfigError, match=r"num_shards \['2', '3'\]"):
        CombinedDataset([Stride([1, 2]), Stride([3], num_shards=3)]).shard(0)


def test_wrapped_wrappers_keep_their_ids():
    inner = DatasetWithTransform(Named("a", 2), transform=lambda s: {**s, "t": 1})
    outer = DatasetWithTransform(inner, use_espnet_collator=True)
    assert outer.uids() == ["a0", "a1"] and outer["a1"] == ("a1", {"uid": "a1", "v": 1, "t": 1})
    assert DatasetWithTransform(DatasetWithTransform([{"v": 1}])).uids() == ["0"]
