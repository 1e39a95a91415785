"""A new kind of ESPnet3Dataset input added in one place: a reader and a registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from espnet3.data.dataset import ESPnet3Dataset
from espnet3.data.input_kinds import INPUT_KINDS, InputKind, register_input_kind
from espnet3.errors import ConfigError


class Transcripts:
    """``<uid> <text>`` lines: a reader with no audio, written only for this test."""

    def __init__(self, path: Path):
        self.lines = [line.split(" ", 1) for line in path.read_text().splitlines()]

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: int) -> dict:
        uid, text = self.lines[index]
        return {"utt_id": uid, "text": text}

    def uids(self) -> list[str]:
        return [uid for uid, _ in self.lines]


@pytest.fixture
def transcripts_kind():
    kind = register_input_kind(
        InputKind(
            "transcripts",
            "a .trn transcript list",
            lambda s: str(s).endswith(".trn"),
            lambda s, split, info: Transcripts(Path(s)),
        )
    )
    yield kind
    INPUT_KINDS.remove(kind)


def test_a_registered_kind_is_read_before_the_catch_all_manifest(transcripts_kind, tmp_path):
    path = tmp_path / "dev.trn"
    path.write_text("fash-an251-b YES\nfash-an253-b GO\n")
    dataset = ESPnet3Dataset(path)
    assert len(dataset) == 2 and dataset.uids() == ["fash-an251-b", "fash-an253-b"]
    assert dataset[-1] == {"utt_id": "fash-an253-b", "text": "GO"}
    with pytest.raises(ConfigError, match="'transcripts' already exists"):
        register_input_kind(transcripts_kind)


def test_an_unreadable_source_lists_every_kind():
    with pytest.raises(ConfigError) as err:
        ESPnet3Dataset(42)
    assert all(kind.what in str(err.value) for kind in INPUT_KINDS)
    assert "cannot read a int" in str(err.value)
