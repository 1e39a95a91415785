"""BaseSystem.create_dataset: builder lifecycle, idempotency, crash safety and locking.

The recipe written here is a real one in miniature: its builder extracts the real mini AN4
archive and writes a JSONL manifest of the SPHERE files of each split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.systems.base.system import BaseSystem

BUILDER = """
import json, os, time
from pathlib import Path

from espnet3.components.data.dataset_builder import DatasetBuilder as Base
from espnet3.parallel import get_parallel_config
from espnet3.utils.archive import extract_archive
from espnet3.utils.atomic import atomic_write_json, atomic_write_jsonl

SPLITS = {"train": "an4_clstk", "test": "an4test_clstk"}


class DatasetBuilder(Base):
    def is_source_prepared(self, *, data_dir, **kw):
        return (Path(data_dir) / "source").is_dir()

    def prepare_source(self, *, data_dir, archive, **kw):
        extract_archive(archive, Path(data_dir) / "source")

    def is_built(self, *, data_dir, **kw):
        return all((Path(data_dir) / f"{split}.jsonl").is_file() for split in SPLITS)

    def build(self, *, data_dir, crash_after=None, pause=0, **kw):
        with open(Path(data_dir) / "build.log", "a") as log:
            log.write(f"{os.getpid()}\\n")
        time.sleep(pause)
        for split, folder in SPLITS.items():
            wavs = sorted((Path(data_dir) / "source/downloads/an4/wav" / folder).rglob("*.sph"))

            def records():
                for i, wav in enumerate(wavs):
                    if crash_after is not None and i == crash_after:
                        raise OSError("disk full")
                    yield {"uid": wav.stem, "path": str(wav)}

            atomic_write_jsonl(Path(data_dir) / f"{split}.jsonl", records())
        atomic_write_json(Path(data_dir) / "meta.json", {"parallel": get_parallel_config().env})
"""

DATASET = """
import json
from pathlib import Path


class Dataset:
    def __init__(self, *, data_dir, split):
        lines = (Path(data_dir) / f"{split}.jsonl").read_text().splitlines()
        self.items = [json.loads(line) for line in lines]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def uids(self):
        return [item["uid"] for item in self.items]
"""


def write_recipe(recipe: Path) -> Path:
    pkg = recipe / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "builder.py").write_text(BUILDER)
    (pkg / "dataset.py").write_text(DATASET)
    (pkg / "__init__.py").write_text(
        "from .builder import DatasetBuilder\nfrom .dataset import Dataset\n"
    )
    return recipe


def make_config(tmp_path: Path, archive: Path, **create_dataset) -> dict:
    data_dir = str(tmp_path / "data")
    return {
        "recipe_dir": str(write_recipe(tmp_path / "recipe")),
        "dataset": {
            "train": [{"data_src_args": {"split": "train", "data_dir": data_dir}}],
            "valid": [{"data_src_args": {"split": "test", "data_dir": data_dir}}],
            "test": [{"name": "test", "data_src_args": {"split": "test", "data_dir": data_dir}}],
        },
        "create_dataset": {"archive": str(archive), "data_dir": data_dir, **create_dataset},
        "parallel": {"env": "local", "n_workers": 1},
    }


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_create_dataset_runs_the_lifecycle_once_per_source_and_then_does_nothing(
    tmp_path, mini_an4_archive
):
    system = BaseSystem(OmegaConf.create(make_config(tmp_path, mini_an4_archive)))
    # train, valid and test come from the same (recipe-local) source: one builder run.
    assert system.prepare_datasets() == [{"data_src": None, "steps": ["prepare_source", "build"]}]
    data = tmp_path / "data"
    before = snapshot(data)
    assert len((data / "train.jsonl").read_text().splitlines()) == 6
    assert json.loads((data / "meta.json").read_text()) == {"parallel": "local"}

    assert system.create_dataset() is None
    assert system.prepare_datasets() == [{"data_src": None, "steps": []}]
    assert snapshot(data) == before
    assert len((data / "build.log").read_text().splitlines()) == 1

    org = system.data_organizer()
    assert len(org.train) == 6 and len(org.valid) == 2
    assert org.test["test"]["cen8-fcaw-b"]["path"].endswith("fcaw/cen8-fcaw-b.sph")


def test_steps_run_in_the_documented_order_with_the_create_dataset_kwargs(tmp_path):
    """is_source_prepared, prepare_source, is_built, build; recipe_dir added when unset."""
    pkg = tmp_path / "recipe" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import json, pathlib
            Dataset = list
            LOG = pathlib.Path(__file__).parent / "calls.jsonl"
            class DatasetBuilder:
                def _log(self, step, kw):
                    with open(LOG, "a") as f:
                        f.write(json.dumps([step, kw]) + "\\n")
                def is_source_prepared(self, **kw): self._log("is_source_prepared", kw)
                def prepare_source(self, **kw): self._log("prepare_source", kw)
                def is_built(self, **kw): self._log("is_built", kw); return True
                def build(self, **kw): self._log("build", kw)
            """
        )
    )
    system = BaseSystem(
        {
            "recipe_dir": str(tmp_path / "recipe"),
            "create_dataset": {"archive": "a.tar.gz"},
            "dataset": {
                "train": [{"data_src_args": {"split": "train"}}],
                "valid": [{"data_src_args": {"split": "valid"}}],
                "test": None,
            },
        }
    )
    assert system.prepare_datasets() == [{"data_src": None, "steps": ["prepare_source"]}]
    kwargs = {"archive": "a.tar.gz", "recipe_dir": str((tmp_path / "recipe").resolve())}
    calls = [json.loads(line) for line in (pkg / "calls.jsonl").read_text().splitlines()]
    assert calls == [
        ["is_source_prepared", kwargs],
        ["prepare_source", kwargs],
        ["is_built", kwargs],
    ]


def test_crash_mid_build_leaves_nothing_is_built_accepts(tmp_path, mini_an4_archive):
    system = BaseSystem(make_config(tmp_path, mini_an4_archive, crash_after=3))
    with pytest.raises(Espnet3Error) as err:
        system.create_dataset()
    assert "DatasetBuilder.build() failed with OSError: disk full" in str(err.value)
    builder = system_builder(system)
    kwargs = {"data_dir": str(tmp_path / "data")}
    assert builder.is_source_prepared(**kwargs) and not builder.is_built(**kwargs)
    assert not (tmp_path / "data" / "train.jsonl").exists()

    config = make_config(tmp_path / "again", mini_an4_archive)
    config["recipe_dir"] = str(tmp_path / "recipe")
    config["create_dataset"]["data_dir"] = str(tmp_path / "data")
    assert BaseSystem(config).prepare_datasets()[0]["steps"] == ["build"]
    assert len((tmp_path / "data" / "train.jsonl").read_text().splitlines()) == 6


def system_builder(system: BaseSystem):
    from espnet3.components.data.dataset_module import builder_class, load_dataset_module

    return builder_class(load_dataset_module(None, recipe_dir=system.recipe_dir))()


def test_dataset_section_is_required_and_must_name_something(tmp_path):
    with pytest.raises(RuntimeError, match="training_config.dataset must be set"):
        BaseSystem({"recipe_dir": str(tmp_path)}).create_dataset()
    empty = {"recipe_dir": str(tmp_path), "dataset": {"train": None, "valid": None, "test": None}}
    with pytest.raises(RuntimeError, match="must include at least one entry"):
        BaseSystem(empty).create_dataset()
    with pytest.raises(TypeError, match="Stage 'create_dataset' does not accept arguments"):
        BaseSystem().create_dataset(1)


def test_stage_log_dirs_follow_the_configs(tmp_path):
    system = BaseSystem(
        {"exp_dir": str(tmp_path / "exp"), "data_dir": str(tmp_path / "data")},
        inference_config={"inference_dir": str(tmp_path / "infer")},
        stage_log_mapping={"infer": ["training_config.nowhere", "inference_config.inference_dir"]},
    )
    assert (tmp_path / "exp").is_dir() and system.stage_log_dirs["default"] == tmp_path / "exp"
    assert system.stage_log_dirs["create_dataset"] == tmp_path / "data"
    assert system.stage_log_dirs["infer"] == tmp_path / "infer"
    assert "collect_stats" not in system.stage_log_dirs
    with pytest.raises(RuntimeError, match="the train stage is not part of this distribution"):
        system.train()


def test_a_custom_organizer_target_is_built_and_its_references_prepared(tmp_path, mini_an4_archive):
    config = make_config(tmp_path, mini_an4_archive)
    config["dataset"]["_target_"] = f"{__name__}.CountingOrganizer"
    system = BaseSystem(config)
    assert system.prepare_datasets()[0]["steps"] == ["prepare_source", "build"]
    organizer = system.data_organizer()
    assert isinstance(organizer, CountingOrganizer) and organizer.sizes == {"train": 1, "test": 1}


class CountingOrganizer:
    def __init__(self, train, valid, test):
        self.sizes = {"train": len(train), "test": len(test)}


def test_two_processes_never_build_the_same_dataset_at_once(tmp_path, mini_an4_archive):
    config = make_config(tmp_path, mini_an4_archive, pause=1.0)
    config["dataset"] = {"test": config["dataset"]["test"]}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(config))
    script = (
        "import sys, json; from espnet3.systems.base.system import BaseSystem; "
        "print(json.dumps(BaseSystem(sys.argv[1]).prepare_datasets()))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "config.yaml")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [json.loads(p.communicate()[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    steps = sorted(tuple(out[0]["steps"]) for out in outputs)
    assert steps == [(), ("prepare_source", "build")]
    assert len((tmp_path / "data" / "build.log").read_text().splitlines()) == 1


def test_yaml_in_conf_dir_defaults_recipe_dir_to_its_parent(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "x.yaml").write_text("dataset: {}\n")
    assert BaseSystem(tmp_path / "conf" / "x.yaml").recipe_dir == tmp_path.resolve()
    with pytest.raises(ConfigError, match="config file .*nope.yaml' does not exist"):
        BaseSystem(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dataset": {"trian": []}}, "dataset: unknown key 'trian' (did you mean 'train'?)"),
        (
            {"dataset": {"test": [{"nmae": "x"}]}},
            "dataset.test[0]: unknown key 'nmae' (did you mean 'name'?)",
        ),
        ({"dataset": {"test": [{}]}, "create_dataset": [1]}, "create_dataset must be a mapping"),
        ({"dataset": {}, "parallel": {"env": "local", "n_workers": 0}}, "n_workers"),
        (
            {"dataset": {"test": [{"name": "t", "data_src": "nowhere/none"}]}},
            "data_src 'nowhere/none' not found",
        ),
    ],
)
def test_bad_configs_are_explained(tmp_path, config, message):
    with pytest.raises(ConfigError) as err:
        BaseSystem({"recipe_dir": str(tmp_path), **config}).create_dataset()
    assert message in str(err.value)


def test_packaged_reference_is_built_from_a_recipe_root(tmp_path, mini_an4_archive, monkeypatch):
    write_recipe(tmp_path / "roots" / "toy" / "asr")
    monkeypatch.setenv("ESPNET3_RECIPES", str(tmp_path / "roots"))
    config = make_config(tmp_path, mini_an4_archive)
    test_args = {"split": "test", "data_dir": str(tmp_path / "data")}
    config["dataset"] = {"test": [{"name": "t", "data_src": "toy/asr", "data_src_args": test_args}]}
    system = BaseSystem(config)
    assert system.prepare_datasets() == [
        {"data_src": "toy/asr", "steps": ["prepare_source", "build"]}
    ]
    assert len(system.data_organizer().test["t"]) == 2
    # The build lock lived beside the data and went with its release; none in the recipe.
    assert not list((tmp_path / "data").glob(".espnet3-*.lock"))
    assert not system.lock_dir.exists() or not os.listdir(system.lock_dir)
