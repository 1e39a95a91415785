"""ESPnet2's own modules on espnet3's datasets: collate, preprocessors, iterators, shape files.

Runs where ESPnet2 and torchaudio are installed (``nox -s espnet2`` builds that environment);
everything here is real: WAV files, ESPnet2's classes, espnet3's organizer and loaders.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet3.components.data.collate import CommonCollateFn as OurCollate
from espnet3.components.data.collect_stats import collect_stats
from espnet3.components.data.data_organizer import DataOrganizer
from espnet3.components.data.dataloader import DataLoaderBuilder
from espnet3.components.data.preprocessor import takes_uid

pytestmark = pytest.mark.espnet2

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<space>", "<sos/eos>"]
TEXTS = ["ab c", "ca", "b", "cab a"]


class WavText:
    """A recipe-style dataset: WAV files on disk, ``uids()`` and ``{"speech", "text"}`` items."""

    def __init__(self, folder: str):
        from pathlib import Path

        self.paths = sorted(Path(folder).glob("*.wav"))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        speech, _ = sf.read(self.paths[i], dtype="float32")
        return {"speech": speech, "text": TEXTS[i]}

    def uids(self):
        return [p.stem for p in self.paths]


@pytest.fixture
def wav_dir(tmp_path):
    for i in range(len(TEXTS)):
        t = np.arange(400 * (i + 2)) / 16000
        sf.write(tmp_path / f"spk-utt{i}.wav", (0.2 * np.sin(900 * t)).astype(np.float32), 16000)
    return tmp_path


def organizer(wav_dir, preprocessor):
    entry = [{"dataset": {"_target_": f"{__name__}.WavText", "folder": str(wav_dir)}}]
    return DataOrganizer(train=entry, valid=entry, preprocessor=preprocessor)


def test_espnet2_common_preprocessor_and_collate_on_organizer_output(wav_dir):
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.preprocessor import CommonPreprocessor

    pre = CommonPreprocessor(train=True, token_type="char", token_list=TOKENS, text_name="text")
    assert takes_uid(pre)  # an ESPnet2 AbsPreprocessor is called as (uid, sample)
    org = organizer(wav_dir, pre)
    org.train.use_espnet_collator = True
    uid, sample = org.train[0]
    assert uid == "spk-utt0" and sample["text"].tolist() == [2, 3, 5, 4]  # a b <space> c
    loader = DataLoaderBuilder(
        org.train,
        {"dataloader": {"train": {"batch_size": 3}}},
        collate_fn=CommonCollateFn(int_pad_value=-1),
    ).build("train")
    (uids, batch), (rest, _) = list(loader)
    assert uids == ["spk-utt0", "spk-utt1", "spk-utt2"] and rest == ["spk-utt3"]
    assert batch["speech_lengths"].tolist() == [800, 1200, 1600]
    assert batch["text"].tolist() == [[2, 3, 5, 4], [4, 2, -1, -1], [3, -1, -1, -1]]
    # espnet3's CommonCollateFn pads the same way.
    ours = OurCollate(int_pad_value=-1)([org.train[i] for i in range(3)])
    for key in batch:
        assert torch.equal(ours[1][key], batch[key]), key


def test_espnet2_abs_preprocessor_subclass_gets_the_utterance_id(wav_dir):
    from espnet2.train.preprocessor import AbsPreprocessor

    seen = []

    class Tagging(AbsPreprocessor):
        def __init__(self):
            super().__init__(train=False)

        def __call__(self, uid, data):
            seen.append(uid)
            return {**data, "n": np.array(len(data["speech"]))}

    org = organizer(wav_dir, Tagging())
    assert int(org.valid[3]["n"]) == 2000 and seen == ["spk-utt3"]


def test_shape_files_from_collect_stats_feed_espnet2_iterators(wav_dir, tmp_path):
    """collect_stats writes ESPnet2 shape files; ESPnet2's sampler and iterator read them."""
    entry = [{"dataset": {"_target_": f"{__name__}.WavText", "folder": str(wav_dir)}}]
    preprocessor = {
        "_target_": "espnet2.train.preprocessor.CommonPreprocessor",
        "train": False,
        "token_type": "char",
        "token_list": TOKENS,
    }
    dataset = {"train": entry, "valid": entry, "preprocessor": preprocessor}
    collect_stats({"_target_": f"{__name__}.Identity"}, dataset, {}, "train", tmp_path / "stats")
    shapes = tmp_path / "stats" / "train"
    assert (shapes / "speech_shape").read_text().splitlines()[0] == "spk-utt0 800"
    assert (shapes / "text_shape").read_text().splitlines()[3] == "spk-utt3 5"  # c a b _ a
    factory = {
        "_target_": "espnet2.iterators.sequence_iter_factory.SequenceIterFactory",
        "collate_fn": {"_target_": "espnet2.train.collate_fn.CommonCollateFn"},
        "batches": {
            "type": "unsorted",
            "shape_files": [str(shapes / "speech_shape")],
            "batch_size": 2,
            "batch_bins": 0,
        },
    }
    org = DataOrganizer.from_config(dataset)
    org.train.use_espnet_collator = True
    loader = DataLoaderBuilder(org.train, {"dataloader": {"train": {"iter_factory": factory}}})
    batches = list(loader.build("train"))
    assert [uids for uids, _ in batches] == [["spk-utt0", "spk-utt1"], ["spk-utt2", "spk-utt3"]]
    assert batches[1][1]["speech_lengths"].tolist() == [1600, 2000]
    assert batches[1][1]["text_lengths"].tolist() == [1, 5]


class Identity(torch.nn.Module):
    """``collect_feats`` returning the padded speech itself."""

    def collect_feats(self, speech, speech_lengths, text, text_lengths):
        return {
            "speech": speech,
            "speech_lengths": speech_lengths,
            "text": text,
            "text_lengths": text_lengths,
        }
