"""Guide: DataOrganizer, DatasetConfig, CombinedDataset, DatasetWithTransform, ShardedDataset."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from espnet3.components.data.dataset import (
    CombinedDataset,
    DatasetWithTransform,
    ShardedDataset,
)
from espnet3.components.data.preprocessor import AbsPreprocessor

MINIMAL_YAML = """
dataset:
  _target_: espnet3.components.data.data_organizer.DataOrganizer
  train:
    - name: train
      dataset:
        _target_: src.dataset.MyDataset
        split: train
      transform:
        _target_: src.transforms.my_transform
  valid:
    - name: valid
      dataset:
        _target_: src.dataset.MyDataset
        split: valid
  test:
    - name: test
      dataset:
        _target_: src.dataset.MyDataset
        split: test
"""

DATASET_CONFIG_YAML = """
- name: dev-clean
  dataset:
    _target_: my_project.datasets.MyDataset
    split: dev-clean
  transform:
    _target_: my_project.transforms.to_upper
"""


class TagUid(AbsPreprocessor):
    """An ESPnet-style preprocessor: called as ``(uid, sample)``."""

    def __call__(self, uid, sample):
        return {**sample, "uid": uid}


def test_minimal_yaml_through_hydra_and_create_dataset(src_package, tmp_path):
    from espnet3.systems.base.system import BaseSystem

    cfg = OmegaConf.create(MINIMAL_YAML)
    organizer = instantiate(cfg.dataset)
    assert (len(organizer.train), len(organizer.valid), len(organizer.test["test"])) == (4, 2, 1)
    assert organizer.train[0]["text"] == organizer.train[0]["text"].lower()  # the transform
    assert organizer.valid[0]["text"].isupper()  # valid has none
    # test[*].name is the key inference selects a split by.
    assert organizer.test["test"][0]["speech"].dtype == np.float32
    # create_dataset takes the same section (its entries are objects: no builder to run).
    system = BaseSystem({"recipe_dir": str(tmp_path), **OmegaConf.to_container(cfg)})
    assert system.create_dataset() is None
    assert len(system.data_organizer().train) == 4


def test_espnet_collator_mode_returns_uid_and_sample(src_package):
    organizer = instantiate(OmegaConf.create(MINIMAL_YAML).dataset)
    organizer.train.use_espnet_collator = True
    sample = organizer.train[0]  # Returns (uid, sample)
    uid, item = sample
    assert uid == src_package_uids(src_package, "train")[0] and set(item) == {"speech", "text"}


def src_package_uids(src, split):
    import json

    lines = (src / "data" / f"{split}.jsonl").read_text().splitlines()
    return [json.loads(line)["utt_id"] for line in lines]


def test_dataset_config_entry(tmp_path, monkeypatch):
    from espnet3.components.data.data_organizer import DataOrganizer, DatasetConfig

    package = tmp_path / "my_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "datasets.py").write_text(
        "class MyDataset:\n"
        "    def __init__(self, split):\n"
        "        self.items = [{'text': f'{split} {i}'} for i in range(3)]\n"
        "    def __len__(self):\n        return len(self.items)\n"
        "    def __getitem__(self, i):\n        return self.items[i]\n"
    )
    (package / "transforms.py").write_text(
        "def to_upper():\n    return lambda s: {**s, 'text': s['text'].upper()}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = OmegaConf.create(DATASET_CONFIG_YAML)
    config = DatasetConfig.from_any(entries[0])
    assert (config.name, config.dataset["split"]) == ("dev-clean", "dev-clean")
    organizer = DataOrganizer(test=entries)
    assert organizer.test["dev-clean"][2] == {"text": "DEV-CLEAN 2"}


def test_dataset_with_transform_as_written(src_package):
    from src.dataset import MyDataset

    dataset = MyDataset("valid")

    def transform(sample):
        return {**sample, "text": sample["text"].lower()}

    def preprocessor(uid, sample):
        return {**sample, "uid": uid}

    wrapped = DatasetWithTransform(dataset, transform, preprocessor, use_espnet_preprocessor=True)
    assert wrapped[1]["uid"] == dataset.uids()[1] and wrapped[1]["text"].islower()


def test_preprocessor_kind_is_detected(src_package):
    from espnet3.components.data.data_organizer import DataOrganizer

    entry = [{"dataset": {"_target_": "src.dataset.MyDataset", "split": "valid"}}]
    espnet_style = DataOrganizer(train=entry, valid=entry, preprocessor=TagUid())
    plain = DataOrganizer(train=entry, valid=entry, preprocessor=lambda s: {**s, "n": 1})
    assert espnet_style.train[0]["uid"] == src_package_uids(src_package, "valid")[0]
    assert plain.train[0]["n"] == 1 and "uid" not in plain.train[0]


def test_sharded_dataset_as_written():
    from torch.utils.data import Subset

    class MyDataset(ShardedDataset):
        total_shards, dist_world_size = 2, 1

        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

        def shard(self, idx):
            some_index_subset = range(idx, len(self), self.total_shards)
            return Subset(self, some_index_subset)

    combined = CombinedDataset([MyDataset([{"v": i} for i in range(6)])])
    shard = combined.shard(1)
    assert [shard[i]["v"] for i in range(len(shard))] == [1, 3, 5]


MY_ORGANIZER = """
from espnet3.components.data.data_organizer import DataOrganizer


def build_train_dataset(entries, preprocessor=None):
    return None if entries is None else DataOrganizer(train=entries, valid=entries).train


build_valid_dataset = build_train_dataset


def build_test_sets(entries, preprocessor=None):
    return {} if entries is None else DataOrganizer(test=entries).test


class MyOrganizer:
    def __init__(self, *, train=None, valid=None, test=None, preprocessor=None):
        self.train = build_train_dataset(train, preprocessor=preprocessor)
        self.valid = build_valid_dataset(valid, preprocessor=preprocessor)
        self._test_sets = build_test_sets(test, preprocessor=preprocessor)

    @property
    def test(self):
        return self._test_sets  # dict-like: name -> dataset
"""


@pytest.mark.parametrize("target", ["DataOrganizer", "MyOrganizer"])
def test_what_training_and_inference_run_against_an_organizer(src_package, target):
    (src_package / "organizer.py").write_text(MY_ORGANIZER)
    path = {
        "DataOrganizer": "espnet3.components.data.data_organizer.DataOrganizer",
        "MyOrganizer": "src.organizer.MyOrganizer",
    }[target]
    cfg = OmegaConf.create(
        MINIMAL_YAML.replace("espnet3.components.data.data_organizer.DataOrganizer", path)
    )
    cfg.test_set = "test"

    # Training / collect_stats
    organizer = instantiate(cfg.dataset)  # _target_: ...DataOrganizer or your custom class
    train_ds = organizer.train
    valid_ds = organizer.valid
    assert len(train_ds) > 0
    sample0 = train_ds[0]  # usually a dict, or (uid, dict) in ESPnet-collator mode
    assert len(valid_ds) == 2 and isinstance(sample0, dict)

    train_ds.use_espnet_collator = True
    uid, sample = train_ds[0]
    assert isinstance(uid, str)
    assert isinstance(sample, dict)

    # Inference
    organizer = instantiate(cfg.dataset)
    test_name = cfg.test_set  # set by the inference loop for each dataset.test entry
    test_ds = organizer.test[test_name]  # dict-like lookup
    item = test_ds[0]  # dict-like dataset item
    assert set(item) == {"speech", "text"}


def test_providing_only_train_is_refused(src_package):
    from espnet3.components.data.data_organizer import DataOrganizer

    entry = [{"dataset": {"_target_": "src.dataset.MyDataset", "split": "train"}}]
    with pytest.raises(RuntimeError, match="dataset.train is set but dataset.valid is not"):
        DataOrganizer(train=entry)
