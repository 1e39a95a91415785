"""Read local speech manifests into rows of ``{"utt_id", "audio", "text", ...}``.

Three layouts are understood; audio paths are made absolute, relative ones being taken from
the manifest's own directory (so a data directory can move as a whole):

- JSONL: one object per line with ``utt_id``, ``audio`` (a path) and ``text``; other keys
  are kept.
- TSV: ``utt_id<TAB>path<TAB>text`` per line, optionally ``<TAB>speaker``.
- Kaldi: a directory with ``wav.scp`` (``utt_id path``) and ``text`` (``utt_id words...``),
  or its ``wav.scp`` file; ``utt2spk`` is read when present. Piped ``wav.scp`` entries (``cmd |``) are refused: run the
  command once and point ``wav.scp`` at the files.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "list.tsv").write_text("u1\\twav/u1.wav\\thello world\\n")
    >>> rows = read_manifest(d / "list.tsv")
    >>> rows[0]["utt_id"], rows[0]["text"], rows[0]["audio"] == str(d / "wav" / "u1.wav")
    ('u1', 'hello world', True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from espnet3.errors import Espnet3Error


def is_kaldi_dir(path: str | os.PathLike) -> bool:
    """True for a directory holding ``wav.scp`` and ``text``.

    Example:
        >>> is_kaldi_dir("/nonexistent")
        False
    """
    return Path(path, "wav.scp").is_file() and Path(path, "text").is_file()


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows of a JSONL or TSV manifest file, or of a Kaldi data directory.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "train.tsv").write_text("u1\\tu1.wav\\thello\\n")
        >>> [row["utt_id"] for row in read_manifest(d / "train.tsv")]
        ['u1']
        >>> _ = (d / "utt2spk").write_text("u1 spk1\\n")
        >>> read_manifest(d / "utt2spk")
        Traceback (most recent call last):
        ...
        espnet3.errors.Espnet3Error: .../utt2spk is not a manifest: give a .jsonl or .tsv file, or a Kaldi directory with wav.scp and text (or feats.scp)
    """
    path = Path(path)
    if path.name == "wav.scp" and path.is_file():  # the file names the directory to read
        path = path.parent
    if path.is_dir() and is_kaldi_dir(path):
        return _read_kaldi(path)
    if path.suffix == ".jsonl" and path.is_file():
        return _read_jsonl(path)
    if path.suffix == ".tsv" and path.is_file():
        return _read_tsv(path)
    raise Espnet3Error(
        f"{path} is not a manifest: give a .jsonl or .tsv file, or a Kaldi directory with "
        "wav.scp and text (or feats.scp)"
    )


def _audio_path(base: Path, value: str, where: str) -> str:
    if value.rstrip().endswith("|"):
        raise Espnet3Error(
            f"{where}: piped audio {value!r} is not supported: write the audio to files first"
        )
    return str((base / value).resolve()) if not os.path.isabs(value) else value


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Espnet3Error(f"{where} is not valid JSON: {exc}") from None
        missing = [k for k in ("utt_id", "audio", "text") if k not in row]
        if missing:
            raise Espnet3Error(f"{where} lacks {missing}: each line needs utt_id, audio, text")
        row["audio"] = _audio_path(path.parent, row["audio"], where)
        rows.append(row)
    return rows


def _read_tsv(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) not in (3, 4):
            raise Espnet3Error(
                f"{path}:{number} has {len(parts)} tab-separated fields, expected 3 or 4: "
                "utt_id<TAB>path<TAB>text[<TAB>speaker]"
            )
        row = {
            "utt_id": parts[0],
            "audio": _audio_path(path.parent, parts[1], f"{path}:{number}"),
            "text": parts[2],
        }
        if len(parts) == 4:
            row["speaker"] = parts[3]
        rows.append(row)
    return rows


def read_table(path: str | os.PathLike) -> dict[str, str]:
    """A Kaldi table file (``key value...`` per line) as a dict.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "utt2spk"
        >>> _ = f.write_text("u1 spk1\\nu2 spk2\\n")
        >>> read_table(f)
        {'u1': 'spk1', 'u2': 'spk2'}
    """
    path = Path(path)
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            table[key] = value.strip()
    return table


def _read_kaldi(directory: Path) -> list[dict]:
    wavs = read_table(directory / "wav.scp")
    texts = read_table(directory / "text")
    speakers = read_table(directory / "utt2spk") if (directory / "utt2spk").is_file() else {}
    missing = sorted(set(wavs) - set(texts))
    if missing:
        raise Espnet3Error(
            f"{directory}/text has no transcript for {len(missing)} utterance(s) of wav.scp, "
            f"e.g. {missing[:3]}: add them or remove them from wav.scp"
        )
    rows = []
    for utt in sorted(wavs):
        row = {
            "utt_id": utt,
            "audio": _audio_path(directory, wavs[utt], f"{directory}/wav.scp {utt}"),
            "text": texts[utt],
        }
        if utt in speakers:
            row["speaker"] = speakers[utt]
        rows.append(row)
    return rows
