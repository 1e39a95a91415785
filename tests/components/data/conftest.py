"""Dataset packages written on the fly, shaped like a recipe's dataset/ directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def write_dataset_package():
    """``write(pkg_dir, tag, builder=True)``: a package whose __init__ imports its siblings.

    ``Dataset(n=2)`` yields ``{"tag": tag, "i": i}``; the builder (when asked for) reports
    everything as done.
    """

    def write(pkg: Path, tag: str, builder: bool = True) -> Path:
        pkg.mkdir(parents=True)
        (pkg / "dataset.py").write_text(
            textwrap.dedent(
                f"""
                class Dataset:
                    def __init__(self, n=2):
                        self.n = n
                    def __len__(self):
                        return self.n
                    def __getitem__(self, i):
                        return {{"tag": "{tag}", "i": i}}
                """
            )
        )
        (pkg / "builder.py").write_text(
            textwrap.dedent(
                """
                from espnet3.components.data.dataset_builder import DatasetBuilder as Base

                class DatasetBuilder(Base):
                    def is_source_prepared(self, **kw): return True
                    def prepare_source(self, **kw): pass
                    def is_built(self, **kw): return True
                    def build(self, **kw): pass
                """
            )
            if builder
            else "DatasetBuilder = None\n"
        )
        (pkg / "__init__.py").write_text(
            "from .builder import DatasetBuilder\nfrom .dataset import Dataset\n"
        )
        return pkg

    return write


@pytest.fixture
def an4_tsv(an4_utterances, tmp_path) -> Path:
    """The real AN4 utterances as a recipe manifest: ``utt_id, wav, text, speaker`` per line."""
    path = tmp_path / "manifest" / "train.tsv"
    path.parent.mkdir()
    path.write_text(
        "".join(
            f"{u['utt_id']}\t{u['path']}\t{u['text']}\t{u['speaker']}\n" for u in an4_utterances
        )
    )
    return path
