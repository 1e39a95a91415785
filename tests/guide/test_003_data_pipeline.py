"""Guide: the ESPnet2 -> ESPnet3 data pipeline (builder.py, dataset.py, YAML, collate).

The recipe is written here as the guide lays it out (``dataset/__init__.py``, ``builder.py``,
``dataset.py``), its builder class as the guide writes it; the helpers the guide only names
(``read_transcripts``, ``convert_sph_to_wav``, ...) are filled in on the real mini AN4 archive.
"""

from __future__ import annotations

import tarfile
import textwrap

import numpy as np
import pytest
from omegaconf import OmegaConf

BUILDER = """
import csv
from pathlib import Path

import soundfile as sf

from espnet3.components.data.dataset_builder import DatasetBuilder
from espnet3.data.sphere import read_sphere
from espnet3.utils.download_utils import extract_targz as extract_archive


def read_transcripts(source_dir):
    texts = {}
    for path in (source_dir / "etc").glob("*.transcription"):
        for line in path.read_text().splitlines():
            words, _, utt = line.rpartition("(")
            texts[utt.rstrip(") ")] = " ".join(w for w in words.split() if w not in ("<s>", "</s>"))
    return [{"utt_id": sph.stem, "sph": sph, "text": texts[sph.stem], "set": sph.parts[-3]}
            for sph in sorted(source_dir.glob("wav/*/*/*.sph")) if sph.stem in texts]


def convert_sph_to_wav(rows, wav_dir):
    wav_dir.mkdir(parents=True, exist_ok=True)
    for row in rows:
        samples, rate = read_sphere(row["sph"])
        row["wav"] = wav_dir / f"{row['utt_id']}.wav"
        sf.write(row["wav"], samples, rate, subtype="PCM_16")
    return rows


def split_train_valid_test(rows):
    train = [r for r in rows if r["set"] == "an4_clstk"]
    return {"train": train[1:], "valid": train[:1],
            "test": [r for r in rows if r["set"] == "an4test_clstk"]}


def write_manifest(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f, delimiter="\\t").writerows([r["utt_id"], r["wav"], r["text"]] for r in rows)


# ---- as the guide writes it ----
class MiniAn4Builder(DatasetBuilder):
    def is_source_prepared(self, recipe_dir: str | Path, **kwargs) -> bool:
        source_dir = Path(recipe_dir) / "source"
        return (source_dir / "an4").is_dir()

    def prepare_source(self, recipe_dir: str | Path, **kwargs) -> None:
        source_dir = Path(recipe_dir) / "source"
        source_dir.mkdir(parents=True, exist_ok=True)
        extract_archive(source_dir / "an4_raw.bigendian.tar.gz", source_dir)

    def is_built(self, recipe_dir: str | Path, **kwargs) -> bool:
        data_dir = Path(recipe_dir) / "data"
        return all(
            (data_dir / split / "wav_text.tsv").is_file()
            for split in ("train", "valid", "test")
        )

    def build(self, recipe_dir: str | Path, **kwargs) -> None:
        source_dir = Path(recipe_dir) / "source" / "an4"
        data_dir = Path(recipe_dir) / "data"
        rows = read_transcripts(source_dir)
        rows = convert_sph_to_wav(rows, data_dir / "wav")
        splits = split_train_valid_test(rows)
        for split, split_rows in splits.items():
            write_manifest(data_dir / split / "wav_text.tsv", split_rows)
"""

DATASET = """
import csv
from pathlib import Path

import soundfile as sf
import torch

DATA = Path(__file__).resolve().parents[1] / "data"


def load_sample(row):
    speech, _ = sf.read(row[1], dtype="float32")
    return {"speech": speech, "text": row[2]}


def random_gain(speech, low=0.5, high=1.5):
    return speech * float(torch.empty(1).uniform_(low, high))


class MyDataset(torch.utils.data.Dataset):
    def __init__(self, split):
        with open(DATA / split / "wav_text.tsv", newline="") as f:
            self.rows = list(csv.reader(f, delimiter="\\t"))

    def __len__(self):
        return len(self.rows)

    def uids(self):
        return [row[0] for row in self.rows]

    # ---- as the guide writes it ----
    def __getitem__(self, idx):
        sample = load_sample(self.rows[idx])
        sample["speech"] = random_gain(sample["speech"])
        return sample
"""

SPLIT_TRANSFORM_YAML = """
dataset:
  train:
    - data_src_args:
        split: train
      transform:
        _target_: src.transforms.augment_training_sample
"""


@pytest.fixture
def recipe(tmp_path, an4_sphere_dir):
    """egs3/<recipe>/<task>/ with dataset/{__init__,builder,dataset}.py and the raw archive."""
    root = tmp_path / "egs3" / "mini_an4" / "asr"
    (root / "dataset").mkdir(parents=True)
    (root / "dataset" / "builder.py").write_text(textwrap.dedent(BUILDER))
    (root / "dataset" / "dataset.py").write_text(textwrap.dedent(DATASET))
    (root / "dataset" / "__init__.py").write_text(
        "from .builder import MiniAn4Builder as DatasetBuilder\nfrom .dataset import MyDataset as Dataset\n"
    )
    (root / "source").mkdir()
    with tarfile.open(root / "source" / "an4_raw.bigendian.tar.gz", "w:gz") as tar:
        tar.add(an4_sphere_dir, arcname="an4")
    return root


def test_builder_py_owns_preparation(recipe):
    from espnet3.systems.base.system import BaseSystem

    system = BaseSystem(
        {"recipe_dir": str(recipe), "dataset": {"test": [{"data_src_args": {"split": "test"}}]}}
    )
    assert system.prepare_datasets() == [{"data_src": None, "steps": ["prepare_source", "build"]}]
    counts = {
        s: len((recipe / "data" / s / "wav_text.tsv").read_text().splitlines())
        for s in ("train", "valid", "test")
    }
    assert counts == {"train": 4, "valid": 1, "test": 2}
    assert system.prepare_datasets()[0]["steps"] == []  # is_source_prepared/is_built: cheap checks


def test_dataset_py_online_augmentation_and_split_specific_transform(recipe, src_package):
    from espnet3.components.data.data_organizer import DataOrganizer
    from espnet3.systems.base.system import BaseSystem

    cfg = OmegaConf.create(SPLIT_TRANSFORM_YAML)
    BaseSystem({"recipe_dir": str(recipe), **OmegaConf.to_container(cfg)}).create_dataset()
    entries = OmegaConf.to_container(cfg.dataset.train)
    organizer = DataOrganizer(
        train=entries, valid=[{"data_src_args": {"split": "valid"}}], recipe_dir=recipe
    )
    import soundfile as sf

    clean, _ = sf.read(organizer.train.datasets[0].rows[0][1], dtype="float32")
    loud = np.abs(clean) > 0.01
    gains = [organizer.train[0]["speech"][loud] / clean[loud] for _ in range(2)]
    for gain in gains:  # random_gain (0.5..1.5) in dataset.py, then the transform's 0.5
        assert np.allclose(gain, gain[0], rtol=1e-4) and 0.25 <= gain[0] <= 0.75
    assert not np.isclose(gains[0][0], gains[1][0])  # a new gain at every read
    assert organizer.valid[0]["text"] == organizer.valid.datasets[0].rows[0][2]


@pytest.mark.espnet2
def test_espnet2_common_collate_fn_still_batches(recipe):
    """``espnet2.train.collate_fn.CommonCollateFn`` pads the recipe dataset's items."""
    from espnet2.train.collate_fn import CommonCollateFn

    from espnet3.components.data.data_organizer import DataOrganizer
    from espnet3.components.data.dataloader import DataLoaderBuilder
    from espnet3.systems.base.system import BaseSystem

    train = [{"data_src_args": {"split": "train"}, "transform": f"{__name__}.speech_only"}]
    BaseSystem(
        {"recipe_dir": str(recipe), "dataset": {"train": train, "valid": train}}
    ).create_dataset()
    organizer = DataOrganizer(train=train, valid=train, recipe_dir=recipe)
    organizer.train.use_espnet_collator = True
    loader = DataLoaderBuilder(
        organizer.train, {"dataloader": {"train": {"batch_size": 2}}}, collate_fn=CommonCollateFn()
    ).build("train")
    uids, batch = next(iter(loader))
    assert len(uids) == 2 and batch["speech"].shape[0] == 2
    assert batch["speech_lengths"].max() == batch["speech"].shape[1]


def speech_only(sample):
    return {"speech": sample["speech"]}
