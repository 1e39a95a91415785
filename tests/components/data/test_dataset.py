"""CombinedDataset, DatasetWithTransform and ShardedDataset."""

from __future__ import annotations

import pytest

from espnet3.components.data.data_organizer import (
    CombinedDataset as ReexportedCombined,
)
from espnet3.components.data.dataset import (
    CombinedDataset,
    DatasetWithTransform,
    ShardedDataset,
    do_nothing,
)
from espnet3.components.data.preprocessor import AbsPreprocessor
from espnet3.errors import ConfigError, ContractError, SetupError, UnknownIdError


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
    def __init__(self, items, total_shards=2, dist_world_size=1):
        self.items = items
        self.total_shards = total_shards
        self.dist_world_size = dist_world_size

    def shard(self, idx):
        return Stride(self.items[idx :: self.total_shards], self.total_shards)

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
    with pytest.raises(UnknownIdError, match="Utterance ID 'zz' is in none of the 2 combined"):
        combined["zz"]


def test_plain_preprocessor_gets_only_the_sample():
    ds = DatasetWithTransform(
        Named("u", 2), preprocessor=lambda s: {"only": s["v"]}, use_espnet_collator=True
    )
    assert ds[1] == ("u1", {"only": 1})
    assert ds["u0"] == ("u0", {"only": 0})
    for kind in (KeyError, ValueError):  # a mapping's error, and upstream ESPnet3's
        with pytest.raises(kind, match="Utterance ID 'nope' is not in Named"):
            ds["nope"]
    with pytest.raises(AssertionError, match="preprocessor must be callable, got int 3"):
        DatasetWithTransform([], preprocessor=3)


def test_key_consistency_is_checked_once_on_first_items():
    first, second = Named("a", 3), Named("b", 3)
    combined = CombinedDataset([first, second])
    assert (first.reads, second.reads) == (1, 1)
    combined[4]
    assert second.reads == 2
    with pytest.raises(ContractError) as err:
        CombinedDataset([[{"a": 1, "b": 2}], [], DatasetWithTransform([{"a": 1}])])
    assert str(err.value) == (
        "combined dataset 2 (list) gives items with keys ['a'] but dataset 0 gives ['a', 'b']: "
        "make their transforms return the same keys"
    )


def test_duplicate_uids_across_datasets_are_refused_at_once():
    with pytest.raises(
        ConfigError, match="Duplicate utterance ID 'a0': it is in combined datasets"
    ):
        CombinedDataset([Named("a", 2), Named("a", 1)])


def test_sharding_all_sharded_datasets():
    combined = CombinedDataset(
        [Stride(list(range(6))), DatasetWithTransform(Stride([100, 101]), lambda s: {"v": -s["v"]})]
    )
    assert combined.is_sharded and (combined.total_shards, combined.dist_world_size) == (2, 1)
    shard = combined.shard(1)
    assert [shard[i]["v"] for i in range(len(shard))] == [1, 3, 5, -101]


def test_sharding_mixed_or_mismatched_datasets_is_refused_when_combined():
    with pytest.raises(
        SetupError, match="If any dataset is a subclass of ShardedDataset.*Stride, list"
    ):
        CombinedDataset([Stride([1, 2]), [{"v": 3}]])
    with pytest.raises(
        RuntimeError, match=r"same total_shards and dist_world_size, got .*\(2, 1\), \(3, 1\)"
    ):
        CombinedDataset([Stride([1, 2]), Stride([3], total_shards=3)])
    with pytest.raises(SetupError, match="requires total_shards and dist_world_size"):
        CombinedDataset([Stride([1], dist_world_size=None)])
    plain = CombinedDataset([[{"v": 1}]])
    assert not plain.is_sharded
    with pytest.raises(SetupError, match="list has no shard"):
        plain.shard(0)


def test_transform_pairs_keyed_datasets_and_the_preprocessor_flag():
    """The ``(transform, preprocessor)`` pairs and ``keys()`` datasets of upstream ESPnet3."""
    calls = []

    def tag(uid, sample):
        calls.append(uid)
        return {**sample, "uid": uid}

    keyed = {"spk1-u1": {"v": 1}, "spk1-u2": {"v": 2}}
    combined = CombinedDataset(
        [[{"v": 0}], keyed], [(do_nothing, tag), (lambda s: {"v": s["v"] * 10}, tag)], True
    )
    assert combined.datasets[1] is keyed and combined.transforms[0] == (do_nothing, tag)
    assert [combined[i] for i in range(3)] == [
        {"v": 0, "uid": "0"},
        {"v": 10, "uid": "spk1-u1"},
        {"v": 20, "uid": "spk1-u2"},
    ]
    assert combined["spk1-u2"] == {"v": 20, "uid": "spk1-u2"} and calls[-1] == "spk1-u2"
    with pytest.raises(ConfigError, match="2 datasets but 1 \\(transform, preprocessor\\) pairs"):
        CombinedDataset([[], []], [(None, None)])
    assert do_nothing("u", {"v": 1}) == ("u", {"v": 1})


def test_wrapped_wrappers_keep_their_ids():
    inner = DatasetWithTransform(Named("a", 2), transform=lambda s: {**s, "t": 1})
    outer = DatasetWithTransform(inner, use_espnet_collator=True)
    assert outer.uids() == ["a0", "a1"] and outer["a1"] == ("a1", {"uid": "a1", "v": 1, "t": 1})
    assert DatasetWithTransform(DatasetWithTransform([{"v": 1}])).uids() == ["0"]
