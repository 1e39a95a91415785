"""Kaldi feature archives: a data directory's ``feats.scp``, read with ``kaldiio``.

Each item is ``{"utt_id", "feats", "text", "speaker"}``: ``feats`` is the utterance's matrix
from its ark as float32 ``(frames, dims)`` (Kaldi's own ``BaseFloat`` type; double and
compressed matrices are converted); ``text`` and ``speaker`` come from ``text`` and
``utt2spk`` in the same directory, each when that file exists. Utterances are in sorted id
order, as Kaldi keeps its tables.

``feats.scp`` lines are ``utt_id ark_path:offset`` with an optional ``[rows]`` or
``[rows,cols]`` range. Kaldi's ``make_fbank.sh``/``make_mfcc.sh`` and ESPnet's dump scripts
write absolute ark paths; a relative one is taken from the directory holding ``feats.scp``
when the ark is there, else from the working directory (Kaldi's scripts run from the recipe
root). Piped entries (``copy-feats ... |``) are refused: run the command once and point
``feats.scp`` at the archive it writes.

The items are features, not audio: there is no ``speech`` or ``sampling_rate``. ESPnet2's
``kaldi_ark`` loader hands such a matrix to models as ``speech``; rename it in the dataset's
preprocessor when a model wants that name.

Example:
    >>> import tempfile, pathlib, numpy as np, kaldiio
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as write:
    ...     write("u1", np.ones((3, 2), np.float32))
    >>> feats = KaldiFeats(d)
    >>> feats.uids(), feats[0]["feats"].shape, feats[0]["feats"].dtype.name
    (['u1'], (3, 2), 'float32')
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.data.manifests import read_table
from espnet3.errors import Espnet3Error

FEATS_SCP = "feats.scp"
# path, then an optional ":offset" and "[range]"; the path itself may hold colons.
_ENTRY = re.compile(r"^(?P<path>.+?)(?P<offset>:\d+)?(?P<range>\[[\d:, ]*\])?$")


def is_feats_dir(path: str | os.PathLike) -> bool:
    """True for a directory holding ``feats.scp``.

    Example:
        >>> is_feats_dir("/nonexistent")
        False
    """
    return Path(path, FEATS_SCP).is_file()


class KaldiFeats:
    """The utterances of a Kaldi data directory's ``feats.scp`` (see the module docstring).

    ``directory`` may also be the ``feats.scp`` file itself.
    """

    def __init__(self, directory: str | os.PathLike):
        directory = Path(directory)
        if directory.name == FEATS_SCP and directory.is_file():
            directory = directory.parent
        scp = directory / FEATS_SCP
        if not scp.is_file():
            raise Espnet3Error(
                f"{directory} has no {FEATS_SCP}: give a Kaldi data directory with features"
            )
        entries = read_table(scp)
        texts = _optional_table(directory / "text")
        speakers = _optional_table(directory / "utt2spk")
        missing = sorted(set(entries) - set(texts)) if texts is not None else []
        if missing:
            raise Espnet3Error(
                f"{directory}/text has no transcript for {len(missing)} utterance(s) of "
                f"{FEATS_SCP}, e.g. {missing[:3]}: add them, remove them from {FEATS_SCP}, or "
                "remove text"
            )
        self.directory = directory
        self._rows = []
        for utt in sorted(entries):
            row = {"utt_id": utt, "feats": _resolve(directory, entries[utt], f"{scp} {utt}")}
            if texts is not None:
                row["text"] = texts[utt]
            if speakers and utt in speakers:
                row["speaker"] = speakers[utt]
            self._rows.append(row)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self._rows[index])
        item["feats"] = read_feats(item["feats"], item["utt_id"])
        return item

    def uids(self) -> list[str]:
        """Utterance ids in item order."""
        return [row["utt_id"] for row in self._rows]


def read_feats(entry: str, utt_id: str = "") -> np.ndarray:
    """The float32 matrix a ``feats.scp`` entry (``ark_path:offset[range]``) names.

    Example:
        >>> import tempfile, pathlib, numpy as np, kaldiio
        >>> ark = pathlib.Path(tempfile.mkdtemp()) / "raw_fbank.1.ark"
        >>> kaldiio.save_ark(str(ark), {"u1": np.ones((2, 3))})   # a double matrix
        >>> read_feats(f"{ark}:3", "u1")   # its data starts after "u1 "
        array([[1., 1., 1.],
               [1., 1., 1.]], dtype=float32)
    """
    import kaldiio

    try:
        value = kaldiio.load_mat(entry)
    except FileNotFoundError:
        raise Espnet3Error(
            f"{utt_id}: feature archive of {entry!r} does not exist: check {FEATS_SCP}"
        ) from None
    except Exception as exc:  # kaldiio raises several types for a wrong offset or format
        raise Espnet3Error(
            f"{utt_id}: cannot read features {entry!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(value, np.ndarray):
        raise Espnet3Error(
            f"{utt_id}: {entry!r} holds {type(value).__name__} (audio in an ark?), not a "
            "feature matrix: list audio in wav.scp instead"
        )
    return np.asarray(value, dtype=np.float32)


def _optional_table(path: Path) -> dict[str, str] | None:
    return read_table(path) if path.is_file() else None


def _resolve(directory: Path, value: str, where: str) -> str:
    """The entry with its ark path made absolute (see the module docstring for the rule)."""
    value = value.strip()
    if value.startswith("|") or value.endswith("|"):
        raise Espnet3Error(
            f"{where}: piped features {value!r} are not supported: run the command once "
            "(e.g. copy-feats scp:feats.scp ark,scp:feats.ark,feats.new.scp) and point "
            f"{FEATS_SCP} at the archive"
        )
    match = _ENTRY.match(value)
    if match is None:
        raise Espnet3Error(f"{where}: no archive given: each line is 'utt_id ark_path:offset'")
    path = Path(match["path"])
    if not path.is_absolute():
        beside = directory / path
        path = beside if beside.exists() or not path.exists() else path
        path = path.resolve()
    return f"{path}{match['offset'] or ''}{match['range'] or ''}"
