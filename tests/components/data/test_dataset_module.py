"""data_src resolution: recipe-local, egs3 modules, recipes under recipe roots, dotted modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from espnet3.components.data.dataset_module import (
    RECIPES_ENV,
    SOURCE_RECIPES,
    builder_class,
    instantiate_dataset_reference,
    load_dataset_module,
    parse_dataset_reference_config,
    recipe_roots,
    resolve_dataset_module_name,
)
from espnet3.errors import ConfigError, ContractError


def test_recipe_local_package_resolves_and_loads(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "recipe" / "dataset", "local")
    path_before = list(sys.path)
    module = load_dataset_module(None, recipe_dir=tmp_path / "recipe")
    assert module.Dataset(n=3)[2] == {"tag": "local", "i": 2}
    assert sys.path == path_before
    assert builder_class(module)().is_built()


def test_packaged_reference_resolves_from_extra_root(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "recipes" / "toy" / "asr" / "dataset", "packaged")
    module = load_dataset_module("toy/asr", recipe_roots=[tmp_path / "recipes"])
    assert module.Dataset()[0]["tag"] == "packaged"
    assert load_dataset_module("toy/asr", recipe_roots=[tmp_path / "recipes"]) is module


def test_packaged_reference_resolves_from_environment(tmp_path, write_dataset_package, monkeypatch):
    write_dataset_package(tmp_path / "envroot" / "toy" / "tts" / "dataset", "env")
    monkeypatch.setenv(RECIPES_ENV, str(tmp_path / "envroot"))
    assert load_dataset_module("toy/tts").Dataset()[1]["tag"] == "env"
    assert recipe_roots(["/x"]) == [Path("/x"), tmp_path / "envroot", SOURCE_RECIPES]


def test_first_root_wins_and_same_named_packages_do_not_collide(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "a" / "toy" / "asr" / "dataset", "first")
    write_dataset_package(tmp_path / "b" / "toy" / "asr" / "dataset", "second")
    first = load_dataset_module("toy/asr", recipe_roots=[tmp_path / "a", tmp_path / "b"])
    second = load_dataset_module("toy/asr", recipe_roots=[tmp_path / "b"])
    assert first.Dataset()[0]["tag"] == "first"
    assert second.Dataset()[0]["tag"] == "second"


def test_a_tag_resolves_in_the_tree_of_the_recipe_being_run(
    tmp_path, write_dataset_package, monkeypatch
):
    # An installed espnet3 has no source tree: `espnet3 create-dataset myrecipes/an4/asr`
    # with data_src "an4/asr" (or a sibling recipe's tag) finds it beside the recipe, before
    # the ESPNET3_RECIPES roots.
    write_dataset_package(tmp_path / "myrecipes" / "an4" / "asr" / "dataset", "own tree")
    write_dataset_package(tmp_path / "elsewhere" / "an4" / "asr" / "dataset", "env")
    monkeypatch.setenv(RECIPES_ENV, str(tmp_path / "elsewhere"))
    recipe = tmp_path / "myrecipes" / "librispeech" / "asr"
    recipe.mkdir(parents=True)
    module = load_dataset_module("an4/asr", recipe_dir=recipe)
    assert module.Dataset()[0]["tag"] == "own tree"
    entry = {"data_src": "an4/asr", "data_src_args": {"n": 1}}
    assert instantiate_dataset_reference(entry, recipe_dir=recipe)[0]["tag"] == "own tree"


def test_absolute_recipe_path_resolves(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "r" / "dataset", "absolute")
    assert load_dataset_module(str(tmp_path / "r")).Dataset()[0]["tag"] == "absolute"


def test_dotted_module_is_imported_as_is(tmp_path, write_dataset_package, monkeypatch):
    write_dataset_package(tmp_path / "site" / "toy_datasets", "dotted")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = load_dataset_module("toy_datasets")
    assert module.__name__ == "toy_datasets"
    assert module.Dataset()[0]["tag"] == "dotted"


def test_unknown_recipe_names_every_place_searched(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "recipes" / "toy" / "asr" / "dataset", "x")
    with pytest.raises(ModuleNotFoundError) as err:
        load_dataset_module("toy/asx", recipe_roots=[tmp_path / "recipes"])
    message = str(err.value)
    assert "data_src 'toy/asx' not found (did you mean 'toy/asr'?)" in message
    assert str(tmp_path / "recipes" / "toy" / "asx" / "dataset") in message
    assert str(SOURCE_RECIPES / "toy" / "asx" / "dataset") in message
    assert RECIPES_ENV in message


def test_missing_recipe_local_package_is_explained(tmp_path):
    with pytest.raises(
        ModuleNotFoundError, match=r"no dataset package at .*dataset .*__init__.py is missing"
    ):
        load_dataset_module(None, recipe_dir=tmp_path)
    with pytest.raises(ContractError, match="recipe_dir must be set when data_src is None"):
        load_dataset_module(None)


def test_bad_dotted_references():
    with pytest.raises(ModuleNotFoundError, match="data_src 'no_such_pkg_x.sub': no module"):
        load_dataset_module("no_such_pkg_x.sub")
    with pytest.raises(ConfigError, match=r"\(data_src 'json'\) does not export Dataset"):
        instantiate_dataset_reference({"data_src": "json"})
    with pytest.raises(ConfigError, match="data_src must be a string .*got int 3"):
        parse_dataset_reference_config({"data_src": 3})
    with pytest.raises(ConfigError, match="data_src_args .* must be a mapping"):
        parse_dataset_reference_config({"data_src": "x.y", "data_src_args": "split=train"})


def test_blank_data_src_is_the_recipe_package(tmp_path, write_dataset_package):
    write_dataset_package(tmp_path / "r" / "dataset", "blank")
    dataset = instantiate_dataset_reference(
        {"data_src": "  ", "data_src_args": {"n": 3}}, recipe_dir=tmp_path / "r"
    )
    assert [dataset[i]["tag"] for i in range(len(dataset))] == ["blank"] * 3


def test_only_data_src_args_reach_the_dataset(tmp_path):
    pkg = tmp_path / "r" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("def Dataset(**kwargs):\n    return kwargs\n")
    entry = {"name": "dev", "split": "dev", "transform": "x.y", "data_src_args": {"split": "a"}}
    assert instantiate_dataset_reference(entry, recipe_dir=tmp_path / "r") == {"split": "a"}


@pytest.fixture
def fresh_egs3(monkeypatch):
    """No ``egs3`` package imported by an earlier test (each test writes its own tree)."""
    for name in [m for m in sys.modules if m == "egs3" or m.startswith("egs3.")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [m for m in sys.modules if m == "egs3" or m.startswith("egs3.")]:
        del sys.modules[name]


def _write_egs3(site, corpus, init):
    pkg = site / "egs3" / corpus / "asr" / "dataset"
    pkg.mkdir(parents=True)
    for d in (site / "egs3", site / "egs3" / corpus, site / "egs3" / corpus / "asr"):
        (d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text(init)


def test_tag_prefers_an_importable_egs3_module(
    tmp_path, monkeypatch, write_dataset_package, fresh_egs3
):
    """An egs3 recipe tree on the path wins over recipe roots, as upstream resolves tags."""
    _write_egs3(tmp_path / "site", "toy_corpus", "class Dataset:\n    tag = 'egs3'\n")
    write_dataset_package(tmp_path / "roots" / "toy-corpus" / "asr" / "dataset", "root")
    assert resolve_dataset_module_name("toy-corpus/asr") == "egs3.toy_corpus.asr.dataset"
    monkeypatch.setenv(RECIPES_ENV, str(tmp_path / "roots"))
    assert load_dataset_module("toy-corpus/asr").Dataset()[0]["tag"] == "root"
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = load_dataset_module("toy-corpus/asr")
    assert module.__name__ == "egs3.toy_corpus.asr.dataset"
    assert module.Dataset.tag == "egs3"


def test_broken_egs3_module_is_not_skipped(tmp_path, monkeypatch, fresh_egs3):
    _write_egs3(tmp_path / "site", "toy_broken", "import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        load_dataset_module("toy_broken/asr")


def test_duck_typed_builder_is_accepted_and_the_abstract_base_is_not(tmp_path):
    duck, base = tmp_path / "duck" / "dataset", tmp_path / "base" / "dataset"
    duck.mkdir(parents=True)
    base.mkdir(parents=True)
    (duck / "__init__.py").write_text(
        "class DatasetBuilder:\n"
        "    def is_source_prepared(self, **kw): return True\n"
        "    def prepare_source(self, **kw): pass\n"
        "    def is_built(self, **kw): return True\n"
        "    def build(self, **kw): pass\n"
    )
    (base / "__init__.py").write_text(
        "from espnet3.components.data.dataset_builder import DatasetBuilder\n"
    )
    assert builder_class(load_dataset_module(None, recipe_dir=duck.parent))().is_built()
    with pytest.raises(ConfigError, match="the abstract base class itself"):
        builder_class(load_dataset_module(None, recipe_dir=base.parent))


def test_package_without_builder_is_rejected_when_a_builder_is_needed(tmp_path):
    pkg = tmp_path / "r" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("Dataset = list\n")
    module = load_dataset_module(None, recipe_dir=tmp_path / "r")
    with pytest.raises(ConfigError, match="must export DatasetBuilder, a class with .*got None"):
        builder_class(module)


def test_error_inside_package_propagates_and_leaves_no_half_module(tmp_path):
    pkg = tmp_path / "r" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('broken recipe')\n")
    for _ in range(2):
        with pytest.raises(RuntimeError, match="broken recipe"):
            load_dataset_module(None, recipe_dir=tmp_path / "r")


def test_mini_an4_reference_resolves():
    module = load_dataset_module("mini_an4/asr")
    assert module.__file__ == str(SOURCE_RECIPES / "mini_an4" / "asr" / "dataset" / "__init__.py")
    assert builder_class(module, "mini_an4/asr")
