"""BaseSystem.create_dataset: builder lifecycle, idempotency, crash safety and locking.

The recipe written here is a real one in miniature: its builder extracts the real mini AN4
archive and writes a JSONL manifest of the SPHERE files of one split.
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

    def is_built(self, *, data_dir, split, **kw):
        return (Path(data_dir) / f"{split}.jsonl").is_file()

    def build(self, *, data_dir, split, crash_after=None, pause=0, **kw):
        with open(Path(data_dir) / "build.log", "a") as log:
            log.write(f"{split} {os.getpid()}\\n")
        time.sleep(pause)
        wavs = sorted((Path(data_dir) / "source/downloads/an4/wav" / SPLITS[split]).rglob("*.sph"))

        def records():
            for i, wav in enumerate(wavs):
                if crash_after is not None and i == crash_after:
                    raise OSError("disk full")
                yield {"uid": wav.stem, "path": str(wav)}

        atomic_write_jsonl(Path(data_dir) / f"{split}.jsonl", records())
        atomic_write_json(Path(data_dir) / f"{split}.meta.json", {"parallel": get_parallel_config().env})
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
    data_dir = tmp_path / "data"
    return {
        "recipe_dir": str(write_recipe(tmp_path / "recipe")),
        "dataset": {
            "train": [{"data_src_args": {"split": "train", "data_dir": str(data_dir)}}],
            "valid": [{"data_src_args": {"split": "test", "data_dir": str(data_dir)}}],
            "test": [
                {"name": "test", "data_src_args": {"split": "test", "data_dir": str(data_dir)}}
            ],
        },
        "create_dataset": {"archive": str(archive), **create_dataset},
        "parallel": {"env": "local", "n_workers": 1},
    }


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_create_dataset_builds_each_reference_once_and_then_does_nothing(
    tmp_path, mini_an4_archive
):
    system = BaseSystem(OmegaConf.create(make_config(tmp_path, mini_an4_archive)))
    first = system.create_dataset()
    # train and test are distinct references; valid and test share one.
    assert [r["steps"] for r in first] == [["prepare_source", "build"], ["build"]]
    assert [r["data_src_args"]["split"] for r in first] == ["train", "test"]
    data = tmp_path / "data"
    before = snapshot(data)
    assert len((data / "train.jsonl").read_text().splitlines()) == 6
    assert json.loads((data / "train.meta.json").read_text()) == {"parallel": "local"}

    second = system.create_dataset()
    assert [r["steps"] for r in second] == [[], []]
    assert snapshot(data) == before

    org = system.data_organizer()
    assert len(org.train) == 6 and len(org.valid) == 2
    assert org.test["test"]["cen8-fcaw-b"]["path"].endswith("fcaw/cen8-fcaw-b.sph")


def test_entry_args_override_recipe_level_kwargs(tmp_path, mini_an4_archive):
    config = make_config(tmp_path, mini_an4_archive, split="train", data_dir="/nonexistent")
    config["dataset"] = {"test": config["dataset"]["test"]}
    BaseSystem(config).create_dataset()
    assert (tmp_path / "data" / "test.jsonl").is_file()
    assert not (tmp_path / "data" / "train.jsonl").exists()


def test_crash_mid_build_leaves_nothing_is_built_accepts(tmp_path, mini_an4_archive):
    system = BaseSystem(make_config(tmp_path, mini_an4_archive, crash_after=3))
    with pytest.raises(Espnet3Error) as err:
        system.create_dataset()
    assert "DatasetBuilder.build() failed with OSError: disk full" in str(err.value)
    assert "split': 'train'" in str(err.value)
    builder = system_builder(system)
    kwargs = {"data_dir": str(tmp_path / "data"), "split": "train"}
    assert builder.is_source_prepared(**kwargs) and not builder.is_built(**kwargs)
    assert not (tmp_path / "data" / "train.jsonl").exists()

    config = make_config(tmp_path / "again", mini_an4_archive)
    config["recipe_dir"] = str(tmp_path / "recipe")
    config["dataset"]["train"][0]["data_src_args"]["data_dir"] = str(tmp_path / "data")
    config["dataset"]["valid"][0]["data_src_args"]["data_dir"] = str(tmp_path / "data")
    config["dataset"].pop("test")
    steps = [r["steps"] for r in BaseSystem(config).create_dataset()]
    assert steps == [["build"], ["build"]]
    assert len((tmp_path / "data" / "train.jsonl").read_text().splitlines()) == 6


def system_builder(system: BaseSystem):
    from espnet3.components.data.dataset_reference import builder_class, resolve_dataset_module

    return builder_class(resolve_dataset_module(None, recipe_dir=system.recipe_dir))()


def test_builder_that_does_not_produce_what_is_built_checks(tmp_path):
    pkg = tmp_path / "recipe" / "dataset"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            from espnet3.components.data.dataset_builder import DatasetBuilder as Base
            Dataset = list
            class DatasetBuilder(Base):
                def is_source_prepared(self, **kw): return True
                def prepare_source(self, **kw): pass
                def is_built(self, **kw): return False
                def build(self, **kw): pass
            """
        )
    )
    system = BaseSystem(
        {"recipe_dir": str(tmp_path / "recipe"), "dataset": {"test": [{"name": "t"}]}}
    )
    with pytest.raises(
        Espnet3Error, match=r"build\(\) returned but DatasetBuilder.is_built\(\) is still False"
    ):
        system.create_dataset()


def test_two_processes_never_build_the_same_dataset_at_once(tmp_path, mini_an4_archive):
    config = make_config(tmp_path, mini_an4_archive, pause=1.0)
    config["dataset"] = {"test": config["dataset"]["test"]}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(config))
    script = (
        "import sys, json; from espnet3.systems.base.system import BaseSystem; "
        "print(json.dumps(BaseSystem(sys.argv[1]).create_dataset()))"
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
        ({"dataset": {}, "create_dataset": [1]}, "create_dataset must be a mapping"),
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


def test_packaged_reference_is_built_from_extra_recipe_root(tmp_path, mini_an4_archive):
    write_recipe(tmp_path / "roots" / "toy" / "asr")
    config = make_config(tmp_path, mini_an4_archive)
    config["dataset"] = {
        "test": [
            {
                "name": "t",
                "data_src": "toy/asr",
                "data_src_args": {"split": "test", "data_dir": str(tmp_path / "data")},
            }
        ]
    }
    system = BaseSystem(config, recipe_roots=[tmp_path / "roots"])
    assert system.create_dataset()[0]["steps"] == ["prepare_source", "build"]
    assert len(system.data_organizer().test["t"]) == 2
    assert os.listdir(system.lock_dir)
