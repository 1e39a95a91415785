"""The layout of an extracted AN4 corpus: transcripts, file lists and SPHERE audio.

``an4/etc/an4_{train,test}.transcription`` holds one ``<s> TEXT </s> (utt_id)`` line per
utterance (the ``<s>``/``</s>`` markers are optional); ``an4/etc/an4_{train,test}.fileids``
lists ``dir/speaker/utt_id`` paths under ``an4/wav`` without the ``.sph`` suffix.

Utterances are named as ESPnet's ``egs2/mini_an4`` names them, speaker first (Kaldi's rule
that an utterance id starts with its speaker id): the corpus file ``an253-fash-b`` (session
``an253``, speaker ``fash``, channel ``b``) is utterance ``fash-an253-b`` of speaker ``fash``.

Example:
    >>> parse_transcript_line("<s> GO </s> (an253-fash-b)")
    ('an253-fash-b', 'GO')
    >>> parse_transcript_line("ELEVEN TWENTY (cen8-fcaw-b)")
    ('cen8-fcaw-b', 'ELEVEN TWENTY')
    >>> espnet_ids("an253-fash-b")
    ('fash-an253-b', 'fash')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from espnet3.errors import Espnet3Error

#: The two sets the corpus ships; valid is carved out of train by the builder.
AN4_SETS = ("train", "test")

_LINE = re.compile(r"^(?:<s>)?(?P<text>.*?)(?:</s>)?\s*\((?P<utt>[^()\s]+)\)\s*$")


@dataclass(frozen=True)
class Utterance:
    """One AN4 utterance: its (speaker-first) id, transcript, SPHERE file and speaker."""

    utt_id: str
    text: str
    sphere: Path
    speaker: str = ""


def espnet_ids(name: str) -> tuple[str, str]:
    """``(utterance id, speaker id)`` of the corpus file ``name`` (``session-speaker-channel``)."""
    parts = name.split("-")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"AN4 file name {name!r} is not session-speaker-channel (an253-fash-b)")
    session, speaker, channel = parts
    return f"{speaker}-{session}-{channel}", speaker


def parse_transcript_line(line: str) -> tuple[str, str]:
    """Split one transcription line into ``(utt_id, text)``; text is whitespace-normalised."""
    match = _LINE.match(line.strip())
    if match is None:
        raise ValueError(f"not an AN4 transcription line '<s> TEXT </s> (utt_id)': {line!r}")
    return match["utt"], " ".join(match["text"].split())


def read_set(an4_root: Path, name: str) -> list[Utterance]:
    """The utterances of AN4 set ``name`` (``train`` or ``test``), sorted by utterance id.

    Every file listed in the set's ``.fileids`` must have a transcript line and a SPHERE file;
    anything missing raises :class:`Espnet3Error` naming the file and the utterance.

    Example:
        >>> [u.utt_id for u in read_set(Path("downloads/an4"), "test")]   # doctest: +SKIP
        ['fcaw-cen8-b', 'mmxg-cen8-b']
    """
    etc = an4_root / "etc"
    transcripts = _read_transcripts(etc / f"an4_{name}.transcription")
    fileids_path = etc / f"an4_{name}.fileids"
    fileids = _read_lines(fileids_path)
    utterances = []
    for fileid in fileids:
        file_name = Path(fileid).name
        if file_name not in transcripts:
            raise Espnet3Error(
                f"AN4 utterance {file_name} (listed in {fileids_path}) has no transcript in "
                f"{etc / f'an4_{name}.transcription'}: restore the file or remove the utterance"
            )
        sphere = an4_root / "wav" / f"{fileid}.sph"
        if not sphere.is_file():
            raise Espnet3Error(
                f"AN4 utterance {file_name}: audio file {sphere} is missing: re-extract the archive"
            )
        try:
            utt_id, speaker = espnet_ids(file_name)
        except ValueError as err:
            raise Espnet3Error(f"{fileids_path}: {err}") from None
        utterances.append(Utterance(utt_id, transcripts[file_name], sphere, speaker))
    return sorted(utterances, key=lambda u: u.utt_id)


def _read_transcripts(path: Path) -> dict[str, str]:
    transcripts = {}
    for number, line in enumerate(_read_lines(path), start=1):
        try:
            utt_id, text = parse_transcript_line(line)
        except ValueError as err:
            raise Espnet3Error(f"{path}:{number}: {err}") from None
        transcripts[utt_id] = text
    return transcripts


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise Espnet3Error(
            f"AN4 file {path} is missing: the unpacked source is incomplete; restore the file, "
            "or delete the unpacked source directory and run create-dataset again"
        )
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
