"""One dataset row -> one Lhotse cut whose audio any process can read back later.

Where the audio is read from later: Lhotse serialises only its own source types (``file``,
``url``, ``command``, ``memory``, ``shar``); a ``memory`` source (what
``CutSet.from_huggingface_dataset`` makes) fails in ``to_file`` because JSON holds no bytes, and
a ``command`` source that re-opens the dataset would start a Python interpreter for every read.
So a cut's source is one of:

- a ``url`` source naming the dataset row (``locate_row`` given, no ``audio_dir``): encoded
  bytes stay in the dataset, nothing is copied (see :mod:`espnet3.data.row_source`). This
  holds for a ``data_info`` that returns the column's value, and for one that returns its
  decoded ``["array"]`` unchanged (see :mod:`espnet3.data.row_audio`). Only a process where
  :func:`espnet3.data.row_source.install` ran reads it: to share the cuts, ``to_file`` of a
  :class:`~espnet3.data.sharing.RowCutSet` and :func:`~espnet3.data.sharing.save_lhotse`
  copy such audio next to the manifests;
- a ``file`` source for a row that names an existing file, referenced where it is;
- with ``audio_dir``, a ``file`` source written there as ``<row // 1000>/<utt_id>.<ext>``:
  encoded bytes unchanged in their own format, decoded samples (arrays, torchcodec decoders)
  and SPHERE audio (which Lhotse reads only through ``sph2pipe``) as 16-bit ``audio_format``
  (FLAC by default: lossless for 16-bit audio, about half the size of WAV);
- without ``audio_dir``, audio that none of the above can reach (bytes of a dataset that
  cannot be re-opened, samples, SPHERE files) is written under ``cache_dir`` when given (the
  converter gives :func:`audio_cache_dir`, which honours ``HF_HOME`` and friends), as
  ``<row // 1000>/<utt_id>.<content hash>.<ext>``: the hash keeps two conversions of the same
  rows that give different audio (another ``data_info``) from overwriting each other.

Every write is atomic and deterministic, so a re-run rewrites identical files.

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

import hashlib
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import soundfile as sf
from lhotse import AudioSource, MonoCut, MultiCut, Recording, SupervisionSegment

from espnet3.data.audio import LoadedAudio
from espnet3.data.fields import custom_names, plain
from espnet3.data.hf_open import Reference
from espnet3.data.row_audio import row_audio, with_audio_values
from espnet3.data.row_source import row_url
from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import atomic_write_bytes

#: Environment variable naming the directory under which audio is cached (see audio_cache_root).
CACHE_ENV = "ESPNET3_CACHE_DIR"
#: Variables whose directory holds the cache's ``espnet3`` folder when CACHE_ENV is unset, in
#: order of precedence: Hugging Face's dataset cache and home, then the XDG cache.
_CACHE_PARENTS = ("HF_DATASETS_CACHE", "HF_HOME", "XDG_CACHE_HOME")
#: soundfile format name -> file extension that Lhotse and soundfile recognise.
_EXTENSIONS = {"nist": "sph", "wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3"}


def utt_id(row: Any, index: int, fields: Mapping[str, Callable], id_prefix: str) -> str:
    """The cut id: ``data_info['id']`` of the row, else ``<id_prefix><row index, 8 digits>``.

    Example:
        >>> utt_id({}, 12, {}, "train-")
        'train-00000012'
    """
    if "id" in fields:
        return str(fields["id"](row))
    return f"{id_prefix}{index:08d}"


def audio_cache_root() -> tuple[Path, str]:
    """The root of espnet3's audio cache, and what chose it (for the log line naming it).

    The first that is set wins: ``$ESPNET3_CACHE_DIR``; ``$HF_DATASETS_CACHE/espnet3`` and
    ``$HF_HOME/espnet3`` (the cached audio is a copy of dataset rows, so it goes to the disk
    chosen for the datasets themselves, not to a small home quota); ``$XDG_CACHE_HOME/espnet3``;
    ``~/.cache/espnet3``.

    Example:
        >>> root, chosen_by = audio_cache_root()
        >>> chosen_by in (CACHE_ENV, *_CACHE_PARENTS, "the default ~/.cache")
        True
    """
    if os.environ.get(CACHE_ENV):
        root, chosen_by = os.environ[CACHE_ENV], CACHE_ENV
    else:
        chosen_by = next((name for name in _CACHE_PARENTS if os.environ.get(name)), None)
        if chosen_by is None:
            root, chosen_by = os.path.join("~", ".cache", "espnet3"), "the default ~/.cache"
        else:
            root = os.path.join(os.environ[chosen_by], "espnet3")
    # Absolute: workers and readers may run with another working directory.
    return Path(root).expanduser().resolve(), chosen_by


def audio_cache_dir(key: str) -> Path:
    """Where audio goes when no ``audio_dir`` is given and its dataset cannot hold it.

    ``<audio_cache_root()>/hf_audio/<key>``. ``key`` is the dataset's fingerprint, so each
    dataset's audio sits in a directory of its own. Cuts read their audio from there: keep it
    as long as their manifests are in use.

    Example:
        >>> audio_cache_dir("9f2c").parts[-2:]
        ('hf_audio', '9f2c')
    """
    return audio_cache_root()[0] / "hf_audio" / key


@dataclass(frozen=True)
class RowLocator:
    """Names a row's audio in a dataset split that any process re-opens (see ``row_source``).

    ``columns`` are the split's columns: audio from any other column (a column renamed since
    the dataset was saved) cannot be named.
    """

    reference: Reference
    fingerprint: str
    columns: frozenset[str]

    def __call__(self, column: str | None, index: int, extension: str) -> str | None:
        """The ``hf-row:`` source of ``column`` in row ``index``; ``None`` if it has none."""
        if column is None or column not in self.columns:
            return None
        return row_url(self.reference, self.fingerprint, column, index, extension)


def row_to_cut(
    row: Any,
    index: int,
    fields: Mapping[str, Callable],
    audio_dir: str | Path | None,
    *,
    id_prefix: str = "",
    audio_format: str = "flac",
    locate_row: RowLocator | None = None,
    cache_dir: str | Path | None = None,
) -> MonoCut | MultiCut:
    """Build the cut of one row (see the module docstring for where its audio is read from).

    A multi-channel row gives a ``MultiCut`` over all its channels (a ``MonoCut`` would keep
    only the first).

    ``locate_row`` names the row's own audio in its dataset; it is used when there is no
    ``audio_dir``, and ``cache_dir`` takes what it cannot name. Raises :class:`Espnet3Error`
    when the audio is missing or unreadable, has nowhere to be read from, or the text is empty.
    """
    row = with_audio_values(row)
    cut_id = utt_id(row, index, fields, id_prefix)
    text = fields["text"](row)
    if text is None or not str(text).strip():
        raise Espnet3Error(f"text is empty ({text!r}): every row needs a transcript")
    audio, column = row_audio(row, fields)
    where = _Where(audio_dir, cache_dir, audio_format, locate_row)
    recording = Recording(
        id=cut_id,
        sources=[_source(audio, cut_id, index, column, where)],
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


class _Where(NamedTuple):  # made per row: a tuple is cheaper to build than a dataclass
    audio_dir: str | Path | None
    cache_dir: str | Path | None
    audio_format: str
    locate_row: RowLocator | None


def _source(
    audio: LoadedAudio, cut_id: str, index: int, column: str | None, where: _Where
) -> AudioSource:
    channels = list(range(audio.num_channels))
    sphere = audio.format == "nist"  # Lhotse reads .sph files only through sph2pipe
    if audio.data is None and audio.path is not None and not sphere:
        return AudioSource(type="file", channels=channels, source=str(Path(audio.path).resolve()))
    if where.audio_dir is not None:
        return _written(audio, cut_id, index, where.audio_dir, where.audio_format, channels)
    if audio.data is not None and where.locate_row is not None:
        url = where.locate_row(column, index, _EXTENSIONS.get(audio.format, audio.format))
        if url is not None:
            return AudioSource(type="url", channels=channels, source=url)
    if where.cache_dir is not None:
        return _written(
            audio, cut_id, index, where.cache_dir, where.audio_format, channels, hashed=True
        )
    if sphere and audio.data is None:
        raise Espnet3Error(
            f"{audio.path} is SPHERE audio, which Lhotse reads only through the sph2pipe "
            "tool: give audio_dir to convert it to FLAC files"
        )
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


def _written(
    audio: LoadedAudio,
    cut_id: str,
    index: int,
    directory: str | Path,
    audio_format: str,
    channels: list[int],
    *,
    hashed: bool = False,
) -> AudioSource:
    """Write the audio under ``directory``: encoded bytes as they are, samples encoded."""
    if audio.data is not None and audio.format != "nist":
        extension, data = _EXTENSIONS.get(audio.format, audio.format), audio.data
    else:
        extension, data = audio_format, _encode(audio, audio_format)
    stem = file_stem(cut_id)
    if hashed:
        stem += "." + hashlib.blake2b(data, digest_size=8).hexdigest()
    target = os.path.join(os.path.abspath(directory), f"{index // 1000:05d}", f"{stem}.{extension}")
    # Not flushed to disk one by one: a re-run rewrites the same bytes (see atomic_open).
    atomic_write_bytes(target, data, durable=False)
    return AudioSource(type="file", channels=channels, source=target)


def file_stem(cut_id: str) -> str:
    """A file name for ``cut_id``: characters a path cannot hold are %-escaped, ``%`` too.

    Distinct ids give distinct names (``spk/utt1`` and ``spk_utt1`` must not share a file).

    Example:
        >>> file_stem("spk/utt1"), file_stem("spk_utt1"), file_stem("50%/x y")
        ('spk%2Futt1', 'spk_utt1', '50%25%2Fx%20y')
    """
    return quote(cut_id, safe="-_.")


def _encode(audio: LoadedAudio, audio_format: str) -> bytes:
    buffer = io.BytesIO()
    try:
        sf.write(buffer, audio.int16(), audio.sampling_rate, format=audio_format.upper())
    except Exception as exc:
        raise Espnet3Error(
            f"cannot write audio as {audio_format!r}: {exc}: use audio_format='flac' or 'wav'"
        ) from None
    return buffer.getvalue()
