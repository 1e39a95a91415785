"""CommonCollateFn: ESPnet2's common_collate_fn convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from espnet3.components.data.collate import CommonCollateFn
from espnet3.errors import Espnet3Error


def test_pads_floats_with_zero_ints_with_minus_one_and_adds_lengths():
    uids, batch = CommonCollateFn()(
        [
            ("u1", {"speech": np.array([1.0, 2.0], dtype=np.float32), "text": np.array([3, 4, 5])}),
            (
                "u2",
                {"speech": np.array([9.0, 8.0, 7.0], dtype=np.float32), "text": torch.tensor([6])},
            ),
        ]
    )
    assert uids == ["u1", "u2"]
    assert set(batch) == {"speech", "speech_lengths", "text", "text_lengths"}
    assert batch["speech"].dtype == torch.float32
    assert batch["speech"].tolist() == [[1.0, 2.0, 0.0], [9.0, 8.0, 7.0]]
    assert batch["text"].tolist() == [[3, 4, 5], [6, -1, -1]]
    assert batch["speech_lengths"].dtype == torch.long
    assert batch["speech_lengths"].tolist() == [2, 3] and batch["text_lengths"].tolist() == [3, 1]


def test_multidimensional_custom_pads_and_not_sequence():
    collate = CommonCollateFn(float_pad_value=-9.0, int_pad_value=0, not_sequence=["spk_emb"])
    _, batch = collate(
        [
            ("a", {"feats": np.ones((1, 2)), "ids": np.array([1]), "spk_emb": np.zeros(3)}),
            ("b", {"feats": np.ones((2, 2)), "ids": np.array([1, 2]), "spk_emb": np.ones(3)}),
        ]
    )
    assert batch["feats"].shape == (2, 2, 2) and batch["feats"][0, 1].tolist() == [-9.0, -9.0]
    assert batch["ids"].tolist() == [[1, 0], [1, 2]]
    assert batch["spk_emb"].shape == (2, 3) and "spk_emb_lengths" not in batch


def test_non_array_values():
    uids, batch = CommonCollateFn()(
        [
            {"n": 1, "w": 0.5, "text": "hi", "meta": {"a": 1}},
            {"n": 2, "w": 1.5, "text": "yo", "meta": None},
        ]
    )
    assert uids == ["0", "1"]
    assert batch["n"].tolist() == [1, 2] and batch["w"].tolist() == [0.5, 1.5]
    assert batch["text"] == ["hi", "yo"] and batch["meta"] == [{"a": 1}, None]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [("a", {"x_lengths": np.ones(1)})],
            "item keys ['x_lengths'] end with '_lengths', which the collate function reserves",
        ),
        (
            [("a", {"x": np.ones(1)}), ("b", {"y": np.ones(1)})],
            "item 'b' has keys ['y'] but item 'a' has ['x']",
        ),
        ([("a", [1, 2])], "item 'a' is a list, not a mapping"),
        (
            [("a", {"x": np.ones((1, 2))}), ("b", {"x": np.ones((1, 3))})],
            "cannot pad key 'x': items ['a', 'b'] have shapes [(1, 2), (1, 3)]",
        ),
        ([("a", {"x": np.array(1.0)})], "cannot pad key 'x': some items hold a 0-d array"),
        ([], "cannot collate an empty batch"),
    ],
)
def test_bad_batches_are_explained(items, message):
    with pytest.raises(Espnet3Error) as err:
        CommonCollateFn()(items)
    assert message in str(err.value)


def test_not_sequence_shape_mismatch():
    with pytest.raises(Espnet3Error, match="key 'e' is in not_sequence but items"):
        CommonCollateFn(not_sequence=["e"])([("a", {"e": np.ones(2)}), ("b", {"e": np.ones(3)})])
