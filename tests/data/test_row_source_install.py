"""Lhotse's IO backend changes only where cuts naming dataset rows are made or read.

What a process does first matters, so those checks run in a fresh process: the backend is a
per-process global, and this test process has converted datasets already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hf_datasets import hf_dataset, saved
from lhotse import CutSet, Recording, serialization
from lhotse.serialization import BuiltinIOBackend, get_current_io_backend, set_current_io_backend

from espnet3.data.huggingface_utils import cutset_from_huggingface
from espnet3.data.row_source import DatasetRowIOBackend, install

INFO = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "utt"}
ROW_BACKEND = (
    "from lhotse.serialization import CURRENT_IO_BACKEND as b\n"
    "print(any(type(x).__name__ == 'DatasetRowIOBackend' for x in getattr(b, 'backends', [])))\n"
)


def run(script: str, *args: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


@pytest.fixture
def file_cuts(generated_utterances, tmp_path):
    """A cut manifest whose audio is in files: nothing of it names a dataset row."""
    cuts = CutSet.from_cuts(
        Recording.from_file(u["path"], recording_id=u["utt_id"]).to_cut()
        for u in generated_utterances[:2]
    )
    cuts.to_file(tmp_path / "files.jsonl.gz")
    return tmp_path / "files.jsonl.gz"


@pytest.fixture
def row_cuts(generated_utterances, tmp_path):
    """A cut manifest, written as a plain CutSet writes it, whose sources name dataset rows."""
    dataset = saved(hf_dataset(generated_utterances, "bytes"), tmp_path)
    cuts = cutset_from_huggingface(INFO, None, dataset, "train")
    assert {c.recording.sources[0].source.split(":")[0] for c in cuts} == {"hf-row"}
    CutSet(cuts).to_file(tmp_path / "rows.jsonl.gz")
    return tmp_path / "rows.jsonl.gz"


def test_importing_espnet3_changes_nothing_and_reading_files_adds_no_row_backend(file_cuts):
    script = (
        "import importlib, pkgutil, espnet3, espnet3.data, lhotse.serialization as s\n"
        "for m in pkgutil.walk_packages(espnet3.data.__path__, 'espnet3.data.'):\n"
        "    importlib.import_module(m.name)\n"
        "import espnet3.components.data.dataset_module, espnet3.parallel, espnet3.runner\n"
        "print(s.CURRENT_IO_BACKEND is None)\n"
        "import sys; from espnet3.data.dataset import ESPnet3Dataset\n"
        "print(ESPnet3Dataset(sys.argv[1])[0]['speech'].size > 0)\n" + ROW_BACKEND
    )
    assert run(script, str(file_cuts)) == ["True", "True", "False"]


def test_fresh_process_reads_row_cuts_through_espnet3_dataset_or_after_install(
    row_cuts, generated_utterances
):
    script = (
        "import sys, numpy as np; from lhotse import CutSet\n"
        "from espnet3.data.dataset import ESPnet3Dataset\n"
        "cut = CutSet.from_file(sys.argv[1])[0]\n"
        "try:\n"
        "    cut.load_audio()\n"
        "except Exception as err:  # Lhotse alone cannot open the row\n"
        "    print('refused:', type(err).__name__)\n"
        "for item in ESPnet3Dataset(sys.argv[1]):\n"
        "    print(item['utt_id'], int(np.rint(item['speech'] * 32768).astype(np.int64).sum()))\n"
        "print(cut.load_audio().shape[0])  # ESPnet3Dataset installed the backend\n" + ROW_BACKEND
    )
    refused, *items, channels, installed = run(script, str(row_cuts))
    assert refused.startswith("refused:")
    assert items == [
        f"{u['utt_id']} {int(u['samples'].sum(dtype='int64'))}" for u in generated_utterances
    ]
    assert (channels, installed) == ("1", "True")


def test_install_is_idempotent_and_keeps_the_backend_in_use_behind_it(monkeypatch):
    monkeypatch.setattr(serialization, "CURRENT_IO_BACKEND", None)  # restored after the test
    mine = set_current_io_backend(BuiltinIOBackend())
    install()
    installed = get_current_io_backend()
    install()
    assert get_current_io_backend() is installed
    assert [type(b) for b in installed.backends] == [DatasetRowIOBackend, BuiltinIOBackend]
    assert installed.backends[1] is mine
