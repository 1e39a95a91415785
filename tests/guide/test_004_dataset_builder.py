"""Guide: the DatasetBuilder lifecycle, from a dataset reference and from Python.

The builder is mini AN4's (``data_src: mini_an4/asr``). Its archive is placed where the
builder's download keeps it (``<data>/archive/downloads.tar.gz``, checked by sha256), so the
lifecycle runs offline exactly as after a first download.
"""

from __future__ import annotations

import shutil

import pytest
from omegaconf import OmegaConf

REFERENCE_YAML = """
dataset:
  train:
    - data_src: mini_an4/asr
      data_src_args:
        split: train
"""


@pytest.fixture
def downloaded(tmp_path, mini_an4_archive, monkeypatch):
    """A recipe directory whose archive was already downloaded; the working directory."""
    (tmp_path / "data" / "archive").mkdir(parents=True)
    shutil.copy(mini_an4_archive, tmp_path / "data" / "archive" / "downloads.tar.gz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def built_manifests(recipe):
    return {
        p.name: len(p.read_text().splitlines()) for p in sorted((recipe / "data").glob("*.tsv"))
    }


def test_a_dataset_reference_triggers_the_builder(downloaded):
    from espnet3.systems.base.system import BaseSystem

    cfg = OmegaConf.create(REFERENCE_YAML)
    system = BaseSystem({"recipe_dir": str(downloaded), **OmegaConf.to_container(cfg)})
    system.create_dataset()
    assert built_manifests(downloaded) == {"test.tsv": 2, "train.tsv": 4, "valid.tsv": 1}
    assert system.prepare_datasets() == [{"data_src": "mini_an4/asr", "steps": []}]


def test_the_lifecycle_from_python(downloaded, capsys):
    from espnet3.components.data.dataset_module import load_dataset_module

    DatasetBuilderSubclass = load_dataset_module("mini_an4/asr").DatasetBuilder

    builder = DatasetBuilderSubclass()
    if not builder.is_source_prepared(recipe_dir="."):
        builder.prepare_source(recipe_dir=".")
    if not builder.is_built(recipe_dir="."):
        builder.build(recipe_dir=".")

    if builder.is_source_prepared(recipe_dir="."):
        print("source already available")
    assert capsys.readouterr().out == "source already available\n"
    assert builder.is_built(recipe_dir=".")
    assert built_manifests(downloaded) == {"test.tsv": 2, "train.tsv": 4, "valid.tsv": 1}
