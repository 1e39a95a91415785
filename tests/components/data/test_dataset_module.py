"""data_src resolution: recipe-local, packaged recipes under recipe roots, dotted modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from espnet3.components.data.dataset_reference import (
    RECIPES_ENV,
    SOURCE_RECIPES,
    builder_class,
    recipe_roots,
    resolve_dataset_module,
)
from espnet3.errors import ConfigError


def test_recipe_local_package_resolves_and_loads(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "recipe" / "dataset", "local")
    path_before = list(sys.path)
    module = resolve_dataset_module(None, recipe_dir=tmp_path / "recipe")
    assert module.Dataset(n=3)[2] == {"tag": "local", "i": 2}
    assert sys.path == path_before
    assert builder_class(module)().is_built()


def test_packaged_reference_resolves_from_extra_root(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "recipes" / "toy" / "asr" / "dataset", "packaged")
    module = resolve_dataset_module("toy/asr", recipe_roots=[tmp_path / "recipes"])
    assert module.Dataset()[0]["tag"] == "packaged"
    assert resolve_dataset_module("toy/asr", recipe_roots=[tmp_path / "recipes"]) is module


def test_packaged_reference_resolves_from_environment(tmp_path, write_dataset_package, monkeypatch):
    write_dataset_package(tmp_path / "envroot" / "toy" / "tts" / "dataset", "env")
    monkeypatch.setenv(RECIPES_ENV, str(tmp_path / "envroot"))
    assert resolve_dataset_module("toy/tts").Dataset()[1]["tag"] == "env"
    assert recipe_roots(["/x"]) == [Path("/x"), tmp_path / "envroot", SOURCE_RECIPES]


def test_first_root_wins_and_same_named_packages_do_not_collide(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "a" / "toy" / "asr" / "dataset", "first")
    write_dataset_package(tmp_path / "b" / "toy" / "asr" / "dataset", "second")
    first = resolve_dataset_module("toy/asr", recipe_roots=[tmp_path / "a", tmp_path / "b"])
    second = resolve_dataset_module("toy/asr", recipe_roots=[tmp_path / "b"])
    assert first.Dataset()[0]["tag"] == "first"
    assert second.Dataset()[0]["tag"] == "second"


def test_absolute_recipe_path_resolves(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "r" / "dataset", "absolute")
    assert resolve_dataset_module(str(tmp_path / "r")).Dataset()[0]["tag"] == "absolute"


def test_dotted_module_is_imported_as_is(tmp_path, write_dataset_package, monkeypatch):
    write_dataset_package(tmp_path / "site" / "toy_datasets", "dotted")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = resolve_dataset_module("toy_datasets")
    assert module.__name__ == "toy_datasets"
    assert module.Dataset()[0]["tag"] == "dotted"


def test_unknown_recipe_names_every_place_searched(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "recipes" / "toy" / "asr" / "dataset", "x")
    with pytest.raises(ConfigError) as err:
        resolve_dataset_module("toy/asx", recipe_roots=[tmp_path / "recipes"])
    message = str(err.value)
    assert "data_src 'toy/asx' not found (did you mean 'toy/asr'?)" in message
    assert str(tmp_path / "recipes" / "toy" / "asx" / "dataset") in message
    assert str(SOURCE_RECIPES / "toy" / "asx" / "dataset") in message
    assert RECIPES_ENV in message


def test_missing_recipe_local_package_is_explained(tmp_path):
    with pytest.raises(
        ConfigError, match=r"no dataset package at .*dataset .*__init__.py is missing"
    ):
        resolve_dataset_module(None, recipe_dir=tmp_path)
    with pytest.raises(ConfigError, match="no data_src and no recipe_dir is set"):
        resolve_dataset_module(None)


def test_bad_dotted_references(tmp_path):
    with pytest.raises(
        ConfigError, match="cannot import 'no_such_pkg_x.sub': no module 'no_such_pkg_x'"
    ):
        resolve_dataset_module("no_such_pkg_x.sub")
    with pytest.raises(ConfigError, match="names a function, not a module"):
        resolve_dataset_module("os.path.join")
    with pytest.raises(ConfigError, match=r"\(data_src 'json'\) does not export Dataset"):
        resolve_dataset_module("json")
    with pytest.raises(ConfigError, match="data_src must be a non-empty string, got ''"):
        resolve_dataset_module("")


def test_package_without_builder_is_rejected_when_a_builder_is_needed(tmp_path):
    pkg = tmp_path / "r" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("Dataset = list\n")
    module = resolve_dataset_module(None, recipe_dir=tmp_path / "r")
    with pytest.raises(ConfigError, match="must export DatasetBuilder, a subclass of .*got None"):
        builder_class(module)


def test_error_inside_package_propagates_and_leaves_no_half_module(tmp_path):
    pkg = tmp_path / "r" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('broken recipe')\n")
    for _ in range(2):
        with pytest.raises(RuntimeError, match="broken recipe"):
            resolve_dataset_module(None, recipe_dir=tmp_path / "r")


def test_mini_an4_reference_resolves():
    module = resolve_dataset_module("mini_an4/asr")
    assert module.__file__ == str(SOURCE_RECIPES / "mini_an4" / "asr" / "dataset" / "__init__.py")
    assert builder_class(module, "mini_an4/asr")
