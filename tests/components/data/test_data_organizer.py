"""DataOrganizer and DatasetConfig: config-driven train/valid/test, validated."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from espnet3.components.data.data_organizer import DataOrganizer, DatasetConfig
from espnet3.components.data.dataset import CombinedDataset, DatasetWithTransform
from espnet3.components.data.preprocessor import AbsPreprocessor
from espnet3.errors import ConfigError, Espnet3Error

LIST = "builtins.list"


def listed(*values):
    return {"_target_": LIST, "_args_": [[{"v": v} for v in values]]}


def upper(sample):
    return {"v": sample["v"] * 10}


class AddUid(AbsPreprocessor):
    def __call__(self, uid, data):
        return {**data, "uid": uid}


@pytest.fixture
def recipes(tmp_path, write_dataset_package):
    """A recipe-local dataset package and a packaged recipe under a temporary recipes root."""
    write_dataset_package(tmp_path / "recipe" / "dataset", "local", builder=False)
    write_dataset_package(tmp_path / "roots" / "toy" / "asr" / "dataset", "packaged", builder=False)
    return tmp_path


def test_from_config_builds_every_kind_of_entry(recipes, monkeypatch):
    config = OmegaConf.create(
        {
            "train": [
                {"data_src_args": {"n": 2}},
                {"data_src": "toy/asr", "data_src_args": {"n": 1}},
            ],
            "valid": [
                {
                    "dataset": listed(7),
                    "transform": {"_target_": f"{__name__}.upper", "_partial_": True},
                }
            ],
            "test": [
                {"name": "local", "data_src_args": {"n": 3}},
                {"name": "dotted", "dataset": listed(1), "transform": f"{__name__}.upper"},
            ],
            "preprocessor": {"_target_": f"{__name__}.AddUid"},
        }
    )
    monkeypatch.setenv("ESPNET3_RECIPES", str(recipes / "roots"))
    org = DataOrganizer.from_config(config, recipe_dir=recipes / "recipe")
    assert isinstance(org.train, CombinedDataset) and isinstance(org.valid, CombinedDataset)
    assert [org.train[i] for i in range(3)] == [
        {"tag": "local", "i": 0, "uid": "0"},
        {"tag": "local", "i": 1, "uid": "1"},
        {"tag": "packaged", "i": 0, "uid": "2"},
    ]
    assert org.valid[0] == {"v": 70, "uid": "0"}
    assert set(org.test) == {"local", "dotted"}
    assert isinstance(org.test["local"], DatasetWithTransform)
    assert org.test["dotted"][0] == {"v": 10, "uid": "0"}
    org.use_espnet_collator = True
    assert org.train[-1] == ("2", {"tag": "packaged", "i": 0, "uid": "2"})
    assert org.test["local"][2] == ("2", {"tag": "local", "i": 2, "uid": "2"})


def test_preprocessor_without_uid_gets_sample_only():
    org = DataOrganizer(
        test=[{"name": "t", "dataset": listed(1)}], preprocessor=lambda s: {"n": s["v"] + 1}
    )
    assert org.test["t"][0] == {"n": 2}
    assert org.train is None and org.valid is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"train": [{"dataset": listed(1)}]},
            "dataset.train is set but dataset.valid is not: training needs both",
        ),
        ({"valid": [{"dataset": listed(1)}]}, "dataset.valid is set but dataset.train is not"),
        (
            {"test": [{"name": "a", "dataset": listed(1)}, {"name": "a", "dataset": listed(2)}]},
            "dataset.test[1]: test set name 'a' is already taken by dataset.test[0]",
        ),
        (
            {"test": [{"dataset": listed(1)}, {"dataset": listed(2)}]},
            "dataset.test[1]: test set name 'local' is already taken by dataset.test[0]",
        ),
        (
            {"test": [{"name": "a", "datset": {}}]},
            "dataset.test[0]: unknown key 'datset' (did you mean 'dataset'?)",
        ),
        (
            {"test": [{"name": "a", "dataset": listed(1), "data_src": "toy/asr"}]},
            "dataset.test[0]: give either dataset (a _target_ config) or data_src/data_src_args, not both",
        ),
        ({"test": {"name": "a"}}, "dataset.test must be a list of dataset entries, got dict"),
        (
            {"test": [{"name": "a", "data_src_args": [1]}]},
            "dataset.test[0].data_src_args must be a mapping",
        ),
        (
            {"test": [{"name": 3, "dataset": listed(1)}]},
            "dataset.test[0].name must be a string, got 3",
        ),
        ({"test": [], "preprocessor": 5}, "dataset.preprocessor must be callable, got int 5"),
        (
            {"test": [{"name": "t", "dataset": listed(1), "transform": "no_such_mod_q.f"}]},
            "cannot import 'no_such_mod_q.f'",
        ),
    ],
)
def test_bad_configs_are_explained(kwargs, message):
    with pytest.raises(Espnet3Error) as err:
        DataOrganizer(**kwargs)
    assert message in str(err.value)


def test_unknown_section_key_is_an_error():
    with pytest.raises(
        ConfigError,
        match=r"dataset: unknown key 'tset' \(did you mean 'test'\?\); known keys: train, valid, test",
    ):
        DataOrganizer.from_config({"tset": []})


def test_missing_recipe_package_names_the_path(tmp_path):
    with pytest.raises(ModuleNotFoundError, match=f"no dataset package at {tmp_path}/dataset"):
        DataOrganizer(test=[{"name": "t"}], recipe_dir=tmp_path)


def test_errors_are_the_types_upstream_code_catches():
    with pytest.raises(RuntimeError, match="dataset.train is set but dataset.valid is not"):
        DataOrganizer(train=[{"dataset": listed(1)}])
    with pytest.raises(AssertionError, match="preprocessor must be callable"):
        DataOrganizer(test=[], preprocessor="not_callable")


def test_unnamed_test_sets_are_named_by_data_src(recipes, monkeypatch):
    monkeypatch.setenv("ESPNET3_RECIPES", str(recipes / "roots"))
    org = DataOrganizer(
        test=[{"data_src": "toy/asr"}, {"data_src_args": {"n": 1}}], recipe_dir=recipes / "recipe"
    )
    assert list(org.test) == ["toy/asr", "local"] and org.test_sets is org.test


def test_hydra_instantiates_the_section_with_objects_already_built(recipes):
    """``instantiate(cfg.dataset)`` builds nested _target_ entries before the organizer sees them."""
    from hydra.utils import instantiate

    section = OmegaConf.create(
        {
            "_target_": "espnet3.components.data.data_organizer.DataOrganizer",
            "recipe_dir": str(recipes / "recipe"),
            "train": [{"dataset": listed(1, 2), "transform": {"_target_": f"{__name__}.Times"}}],
            "valid": [{"data_src_args": {"n": 1}}],
            "test": [{"name": "t", "dataset": listed(3)}],
        }
    )
    org = instantiate(section)
    assert [org.train[i] for i in range(2)] == [{"v": 3}, {"v": 6}]
    assert org.valid[0] == {"tag": "local", "i": 0} and org.test["t"][0] == {"v": 3}


def test_from_config_hands_another_organizer_class_to_hydra():
    org = DataOrganizer.from_config(
        {"_target_": f"{__name__}.MyOrganizer", "test": [{"anything": 1}], "extra": 2}
    )
    assert isinstance(org, MyOrganizer) and org.kwargs["extra"] == 2


class Times:
    def __call__(self, sample):
        return {"v": sample["v"] * 3}


class MyOrganizer:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def test_dataset_config_entry_keeps_only_what_is_set():
    cfg = DatasetConfig.from_any({"data_src": "x/y", "data_src_args": {"split": "a"}})
    assert cfg.entry() == {"data_src": "x/y", "data_src_args": {"split": "a"}}
    assert cfg.uses_reference and not DatasetConfig.from_any({"dataset": [1]}).uses_reference
