"""The guide's examples run as written: the code it leaves to the user, filled in.

``guide_recipe`` holds the functions and classes the guide names without defining
(``load_raw_samples``, ``build_feature_pipeline``, ``save_features``, ...); ``src`` is the
recipe-local package its YAML examples point at (``src.dataset.MyDataset``,
``src.transforms.my_transform``), written per test next to real AN4 audio. Both are put
where worker processes and shard jobs import them from.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)


@pytest.fixture(autouse=True)
def guide_recipe_importable(monkeypatch):
    """Shard jobs (subprocesses) import ``guide_recipe`` through ``PYTHONPATH``."""
    current = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (HERE, current) if p))


@pytest.fixture
def an4_manifest(an4_utterances, tmp_path) -> Path:
    """A JSONL list of the real AN4 WAVs: ``utt_id``, ``path``, ``text``, ``speaker``."""
    path = tmp_path / "an4.jsonl"
    rows = [{k: u[k] for k in ("utt_id", "path", "text", "speaker")} for u in an4_utterances]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


SRC_DATASET = '''
import json
from pathlib import Path

import soundfile as sf

DATA = Path(__file__).resolve().parent / "data"


class MyDataset:
    """The recipe dataset the guide's YAML names: real AN4 audio, one list per split."""

    def __init__(self, split):
        self.rows = [json.loads(l) for l in (DATA / f"{split}.jsonl").read_text().splitlines()]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, idx):
        row = self.rows[idx]
        speech, rate = sf.read(row["path"], dtype="float32")
        return {"speech": speech, "text": row["text"]}

    def uids(self):
        return [row["utt_id"] for row in self.rows]
'''

SRC_TRANSFORMS = '''
def my_transform():
    """A transform factory: Hydra calls the _target_, and what it returns is the transform."""

    def lower_text(sample):
        return {**sample, "text": sample["text"].lower()}

    return lower_text


def augment_training_sample():
    def halve_gain(sample):
        return {**sample, "speech": sample["speech"] * 0.5}

    return halve_gain
'''


@pytest.fixture
def src_package(tmp_path, monkeypatch, an4_manifest) -> Iterator[Path]:
    """``src/`` with ``dataset.MyDataset`` and ``transforms``; the 7 AN4 utterances split 4 / 2 / 1."""
    src = tmp_path / "project" / "src"
    (src / "data").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "dataset.py").write_text(textwrap.dedent(SRC_DATASET))
    (src / "transforms.py").write_text(textwrap.dedent(SRC_TRANSFORMS))
    rows = an4_manifest.read_text().splitlines()
    for split, part in (("train", rows[:4]), ("valid", rows[4:6]), ("test", rows[6:])):
        (src / "data" / f"{split}.jsonl").write_text("\n".join(part) + "\n")
    monkeypatch.syspath_prepend(str(src.parent))
    current = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(src.parent), current) if p))
    _forget_src()  # each test writes its own src/: none may be served from an earlier one
    yield src
    _forget_src()


def _forget_src() -> None:
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]
