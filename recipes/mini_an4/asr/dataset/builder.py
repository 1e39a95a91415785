"""Prepare mini AN4: fetch and unpack the archive, then write 16 kHz WAVs and manifests.

``DATA_DIR`` ends up holding::

    source/downloads/an4/...      the unpacked archive (SPHERE audio, transcripts)
    wav/{train,valid,test}/UTT.wav
    {train,valid,test}.tsv        utt_id<TAB>wav path relative to DATA_DIR<TAB>text<TAB>speaker

Utterance ids and speakers are ESPnet's (``fash-an251-b``, speaker ``fash``: see
:mod:`.an4`). The corpus ships ``train`` and ``test`` sets; ``valid`` is the first
``num_valid`` utterances of ``train`` in sorted utterance-id order (the rule of ESPnet's
egs2/mini_an4: ``fash-an251-b``), and ``train`` keeps the rest, so the split is the same on
every run and machine.

Example:
    >>> builder = DatasetBuilder()
    >>> kw = dict(data_dir="data", archive="../shared/data/mini_an4/downloads.tar.gz")
    >>> if not builder.is_built(**kw):                          # doctest: +SKIP
    ...     builder.prepare_source(**kw)
    ...     builder.build(**kw)
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.components.data.dataset_builder import DatasetBuilder as BaseDatasetBuilder
from espnet3.data.audio import wav_truncated
from espnet3.data.sphere import read_sphere
from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel import parallel_map
from espnet3.utils.archive import extract_archive
from espnet3.utils.atomic import atomic_write_bytes, remove_stale_temps
from espnet3.utils.download import download, sha256_of

from .an4 import AN4_SETS, Utterance, read_set
from .manifest import SPLITS, ManifestEntry, manifest_path, read_manifest, write_manifest

#: ESPnet's CI copy of mini AN4 (CMU AN4 subset; licence in the recipe README).
MINI_AN4_URL = "https://github.com/espnet/espnet/raw/master/egs2/mini_an4/asr1/downloads.tar.gz"
MINI_AN4_SHA256 = "42314268903a35709fff2029ee0fbac27c886eae37de308733e0f1b465f4eb5e"
SAMPLE_RATE = 16000


def an4_root(data_dir: str | os.PathLike) -> Path:
    """Where the unpacked corpus lives under ``data_dir``."""
    return Path(data_dir) / "source" / "downloads" / "an4"


def resolve_data_dir(data_dir: str | None, recipe_dir: str | None) -> Path:
    """``data_dir``, else ``<recipe_dir>/data`` (where the guide's recipes keep their data)."""
    if data_dir is None and recipe_dir is None:
        raise ConfigError(
            "mini AN4 needs create_dataset.data_dir (or a recipe_dir, whose data/ is used): "
            "set data_dir to where the prepared data should go"
        )
    return Path(data_dir) if data_dir is not None else Path(recipe_dir) / "data"


class DatasetBuilder(BaseDatasetBuilder):
    """The mini AN4 builder; every method takes the ``create_dataset`` keyword arguments.

    Keyword arguments: ``data_dir`` (default ``<recipe_dir>/data``), ``archive`` (a local
    copy of the archive; ``None`` downloads ``url`` to ``<data_dir>/archive`` unless a copy
    with the right checksum is already there), ``url``, ``sha256`` (checked for local and
    downloaded archives; ``None`` skips the check) and ``num_valid``. Others are ignored.
    """

    def is_source_prepared(
        self, *, data_dir: str | None = None, recipe_dir: str | None = None, **kwargs: Any
    ) -> bool:
        # extract_archive renames the unpacked tree into place only when it is complete.
        return (resolve_data_dir(data_dir, recipe_dir) / "source").is_dir()

    def prepare_source(
        self,
        *,
        data_dir: str | None = None,
        recipe_dir: str | None = None,
        archive: str | None = None,
        url: str = MINI_AN4_URL,
        sha256: str | None = MINI_AN4_SHA256,
        **kwargs: Any,
    ) -> None:
        data_dir = resolve_data_dir(data_dir, recipe_dir)
        if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha256)):
            raise ConfigError(
                f"create_dataset.sha256 must be 64 hex digits or null, got {sha256!r} (an "
                "all-digit value must be quoted, or YAML reads it as a number)"
            )
        if archive is None:
            path = download(
                url,
                Path(data_dir) / "archive" / "downloads.tar.gz",
                sha256=sha256,
                hint="; or give a local copy: create_dataset.archive=PATH/downloads.tar.gz",
            )
        else:
            path = Path(archive)
            if not path.is_file():
                raise ConfigError(
                    f"create_dataset.archive={archive!r} is not a file (looked in {Path.cwd()}): "
                    "fix the path, or set it to null to download the archive"
                )
            if sha256 is not None and sha256_of(path) != sha256.lower():
                raise Espnet3Error(
                    f"{path} has sha256 {sha256_of(path)}, expected {sha256}: the file is corrupt "
                    "or another version; replace it, or set create_dataset.sha256=null"
                )
        extract_archive(path, Path(data_dir) / "source")

    def is_built(
        self, *, data_dir: str | None = None, recipe_dir: str | None = None, **kwargs: Any
    ) -> bool:
        data_dir = resolve_data_dir(data_dir, recipe_dir)
        if not all(manifest_path(data_dir, split).is_file() for split in SPLITS):
            return False
        try:
            entries = [entry for split in SPLITS for entry in read_manifest(data_dir, split)]
        except Espnet3Error:  # a manifest of an older layout (no speaker column): rebuild
            return False
        return all(_whole(Path(data_dir) / entry.wav) for entry in entries)

    def build(
        self,
        *,
        data_dir: str | None = None,
        recipe_dir: str | None = None,
        num_valid: int = 1,
        **kwargs: Any,
    ) -> None:
        data_dir = resolve_data_dir(data_dir, recipe_dir)
        splits = split_sets(
            {name: read_set(an4_root(data_dir), name) for name in AN4_SETS}, num_valid
        )
        jobs = [
            (utt.sphere, Path(data_dir) / wav_path(split, utt.utt_id), utt.utt_id)
            for split, utts in splits.items()
            for utt in utts
        ]
        for folder in {wav.parent for _, wav, _ in jobs}:
            remove_stale_temps(folder)  # WAVs a killed run was writing
        parallel_map(convert_sphere, jobs)
        for split, utts in splits.items():
            write_manifest(
                data_dir,
                split,
                [
                    ManifestEntry(u.utt_id, wav_path(split, u.utt_id), u.text, u.speaker)
                    for u in utts
                ],
            )


def split_sets(sets: dict[str, list[Utterance]], num_valid: int) -> dict[str, list[Utterance]]:
    """``{train, valid, test}`` from the corpus sets: valid is the head of the sorted train set.

    Example:
        >>> u = [Utterance(f"u{i}", "T", Path("x")) for i in range(3)]
        >>> {k: [x.utt_id for x in v] for k, v in split_sets({"train": u, "test": []}, 1).items()}
        {'train': ['u1', 'u2'], 'valid': ['u0'], 'test': []}
    """
    train = sorted(sets["train"], key=lambda u: u.utt_id)
    if (
        isinstance(num_valid, bool)
        or not isinstance(num_valid, int)
        or not 0 < num_valid < len(train)
    ):
        raise ConfigError(
            f"create_dataset.num_valid must be an integer from 1 to {len(train) - 1} "
            f"(the train set has {len(train)} utterances), got {num_valid!r}"
        )
    return {"train": train[num_valid:], "valid": train[:num_valid], "test": sets["test"]}


def _whole(wav: Path) -> bool:
    return wav.is_file() and not wav_truncated(wav)


def wav_path(split: str, utt_id: str) -> str:
    """The WAV of ``utt_id``, relative to the data directory."""
    return f"wav/{split}/{utt_id}.wav"


def convert_sphere(job: tuple[Path, Path, str]) -> None:
    """Write the SPHERE file ``job[0]`` as a 16-bit 16 kHz WAV at ``job[1]`` (skip if present)."""
    import soundfile

    sphere, wav, utt_id = job
    if _whole(wav):  # written atomically: present and as long as its header says, it is done
        return
    try:
        samples, rate = read_sphere(sphere)
    except Espnet3Error as err:
        raise Espnet3Error(f"AN4 utterance {utt_id}: {err}") from None
    if rate != SAMPLE_RATE or samples.ndim != 1 or samples.size == 0:
        raise Espnet3Error(
            f"AN4 utterance {utt_id}: {sphere} holds {samples.shape} samples at {rate} Hz; "
            f"expected non-empty mono {SAMPLE_RATE} Hz audio: replace the file"
        )
    # Encoded in memory, then written with plain os.write: soundfile writing to a file object
    # loses the OS error (a full disk became "AssertionError: ;") in its callback.
    encoded = io.BytesIO()
    soundfile.write(encoded, np.asarray(samples), rate, format="WAV", subtype="PCM_16")
    atomic_write_bytes(wav, encoded.getvalue())
