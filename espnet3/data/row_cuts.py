"""One dataset row -> one Lhotse cut whose audio any process can read back later.

Where the audio is read from later: Lhotse serialises only its own source types (``file``,
``url``, ``command``, ``memory``, ``shar``); a ``memory`` source (what
``CutSet.from_huggingface_dataset`` makes) fails in ``to_file`` because JSON holds no bytes, and
a ``command`` source that re-opens the dataset would start a Python interpreter for every read.
So a cut's source is one of:

- a ``url`` source naming the dataset row (``locate_row`` given, no ``audio_dir``): encoded
  bytes stay in the dataset, nothing is copied (see :mod:`espnet3.data.row_source`);
- a ``file`` source for a row that names an existing file, referenced where it is;
- with ``audio_dir``, a ``file`` source written there as ``<row // 1000>/<utt_id>.<ext>``:
  encoded bytes unchanged in their own format, decoded samples (arrays, torchcodec decoders)
  and SPHERE audio (which Lhotse reads only through ``sph2pipe``) as 16-bit ``audio_format`` (FLAC by default: lossless for 16-bit audio, about half the size
  of WAV). Every write is atomic and deterministic, so a re-run rewrites identical files.

Example:
    >>> import tempfile
    >>> from espnet3.data.fields import resolve_fields
    >>> fields = resolve_fields({"audio": "a", "text": "t", "id": "k"})
    >>> row = {"a": {"array": [0.0, 0.25], "sampling_rate": 8000}, "t": "hi", "k": "u1"}
    >>> cut = row_to_cut(row, 0, fields, tempfile.mkdtemp())
    >>> cut.id, cut.supervisions[0].text, cut.recording.sources[0].type
    ('u1', 'hi', 'file')
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import soundfile as sf
from lhotse import AudioSource, MonoCut, MultiCut, Recording, SupervisionSegment

from espnet3.data.audio import LoadedAudio, load_audio
from espnet3.data.fields import custom_names, plain
from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import atomic_write_bytes

#: soundfile format name -> file extension that Lhotse and soundfile recognise.
_EXTENSIONS = {"nist": "sph", "wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3"}
_UNSAFE = re.compile(r"[^\w.\-]")


def utt_id(row: Any, index: int, fields: Mapping[str, Callable], id_prefix: str) -> str:
    """The cut id: ``data_info['id']`` of the row, else ``<id_prefix><row index, 8 digits>``.

    Example:
        >>> utt_id({}, 12, {}, "train-")
        'train-00000012'
    """
    if "id" in fields:
        return str(fields["id"](row))
    return f"{id_prefix}{index:08d}"


def row_to_cut(
    row: Any,
    index: int,
    fields: Mapping[str, Callable],
    audio_dir: str | Path | None,
    *,
    id_prefix: str = "",
    audio_format: str = "flac",
    locate_row: Callable[[int, str], str] | None = None,
) -> MonoCut | MultiCut:
    """Build the cut of one row (see the module docstring for where its audio is read from).

    A multi-channel row gives a ``MultiCut`` over all its channels (a ``MonoCut`` would keep
    only the first).

    ``locate_row(index, extension)`` gives the source string of the row's own audio; it is
    used when there is no ``audio_dir``. Raises :class:`Espnet3Error` when the audio is missing
    or unreadable, has nowhere to be read from, or the text is empty.
    """
    cut_id = utt_id(row, index, fields, id_prefix)
    text = fields["text"](row)
    if text is None or not str(text).strip():
        raise Espnet3Error(f"text is empty ({text!r}): every row needs a transcript")
    rate = fields["sampling_rate"](row) if "sampling_rate" in fields else None
    audio = load_audio(fields["audio"](row), rate)
    recording = Recording(
        id=cut_id,
        sources=[_source(audio, cut_id, index, audio_dir, audio_format, locate_row)],
        sampling_rate=audio.sampling_rate,
        num_samples=audio.num_samples,
        duration=audio.num_samples / audio.sampling_rate,
    )
    channel = 0 if audio.num_channels == 1 else list(range(audio.num_channels))
    supervision = SupervisionSegment(
        id=cut_id,
        recording_id=cut_id,
        start=0.0,
        duration=recording.duration,
        channel=channel,
        text=str(text),
        speaker=_optional(fields, "speaker", row),
        language=_optional(fields, "language", row),
    )
    custom = {name: plain(fields[name](row)) for name in custom_names(fields)}
    return (MonoCut if channel == 0 else MultiCut)(
        id=cut_id,
        start=0.0,
        duration=recording.duration,
        channel=channel,
        recording=recording,
        supervisions=[supervision],
        custom=custom or None,
    )


def _optional(fields: Mapping[str, Callable], name: str, row: Any) -> str | None:
    value = fields[name](row) if name in fields else None
    return None if value is None else str(value)


def _source(
    audio: LoadedAudio,
    cut_id: str,
    index: int,
    audio_dir: str | Path | None,
    audio_format: str,
    locate_row: Callable[[int, str], str] | None,
) -> AudioSource:
    channels = list(range(audio.num_channels))
    sphere = audio.format == "nist"  # Lhotse reads .sph files only through sph2pipe
    if audio.data is None and audio.path is not None and not (sphere and audio_dir):
        if sphere:
            raise Espnet3Error(
                f"{audio.path} is SPHERE audio, which Lhotse reads only through the sph2pipe "
                "tool: give audio_dir to convert it to FLAC files"
            )
        return AudioSource(type="file", channels=channels, source=str(Path(audio.path).resolve()))
    extension = _EXTENSIONS.get(audio.format, audio.format)
    if audio_dir is None:
        if audio.data is None or locate_row is None:
            what = (
                "decoded samples"
                if audio.data is None
                else "bytes of a dataset that cannot be re-opened as it is (in memory, or "
                "selected, sliced, filtered or mapped since it was loaded)"
            )
            raise Espnet3Error(
                f"the audio is {what}, which a cut cannot point at: give audio_dir to write "
                "it to files (or convert a dataset saved with save_to_disk, by path)"
            )
        return AudioSource(type="url", channels=channels, source=locate_row(index, extension))
    if audio.data is not None and not sphere:
        data = audio.data
    else:
        extension, data = audio_format, _encode(audio, audio_format)
    name = f"{_UNSAFE.sub('_', cut_id)}.{extension}"
    target = os.path.join(os.path.abspath(audio_dir), f"{index // 1000:05d}", name)
    # Not flushed to disk one by one: a re-run rewrites the same bytes (see atomic_open).
    atomic_write_bytes(target, data, durable=False)
    return AudioSource(type="file", channels=channels, source=target)


def _encode(audio: LoadedAudio, audio_format: str) -> bytes:
    buffer = io.BytesIO()
    try:
        sf.write(buffer, audio.int16(), audio.sampling_rate, format=audio_format.upper())
    except Exception as exc:
        raise Espnet3Error(
            f"cannot write audio as {audio_format!r}: {exc}: use audio_format='flac' or 'wav'"
        ) from None
    return buffer.getvalue()
