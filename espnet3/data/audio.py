"""Turn whatever a dataset row holds for audio into samples, without losing a bit.

Hugging Face ``datasets`` hands audio over in several shapes, depending on the column type and
on whether decoding is on: ``{"bytes", "path"}`` (``Audio(decode=False)``), ``{"array",
"sampling_rate"}`` (older decoded form, or a plain struct column), a torchcodec
``AudioDecoder`` (``datasets`` >= 4 with decoding on), a bare array (with the rate given
separately) or a file path. :func:`load_audio` accepts them all and keeps the encoded bytes or
the path when there is one, so that writers can store the original file unchanged instead of
re-encoding it.

Rows read undecoded hold ``{"bytes", "path"}``; :class:`AudioValue` wraps such a value so that
``value["array"]`` and ``value["sampling_rate"]`` answer as a decoded ``datasets`` value does
(decoded here with soundfile, so torchcodec is not needed).

Example:
    >>> import io, numpy as np, soundfile as sf
    >>> buf = io.BytesIO(); sf.write(buf, np.array([0, 7, -7], np.int16), 8000, format="WAV")
    >>> audio = load_audio({"bytes": buf.getvalue(), "path": None})
    >>> audio.int16().tolist(), audio.sampling_rate, audio.num_samples
    ([0, 7, -7], 8000, 3)
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from espnet3.errors import Espnet3Error


@dataclass
class LoadedAudio:
    """Audio from one row: the encoded ``data`` or ``path`` when known, else decoded samples.

    ``samples`` are ``(frames,)`` or ``(frames, channels)``, as soundfile returns them.
    """

    sampling_rate: int
    num_samples: int
    num_channels: int
    data: bytes | None = None
    path: str | None = None
    format: str | None = None
    samples: np.ndarray | None = None

    def read(self, dtype: str = "float32") -> np.ndarray:
        """The samples as ``dtype`` (``float32`` in [-1, 1), or ``int16``), decoding if needed.

        Example:
            >>> LoadedAudio(16000, 2, 1, samples=np.array([0.5, -1.0])).read().tolist()
            [0.5, -1.0]
        """
        if self.samples is None:
            try:
                decoded = sf.read(self._file(), dtype=dtype, always_2d=False)[0]
            except Exception as exc:  # soundfile names a BytesIO by its repr
                reason = getattr(exc, "error_string", None) or str(exc)
                where = f"{len(self.data)} bytes" if self.data is not None else repr(self.path)
                raise Espnet3Error(f"audio ({where}) cannot be decoded: {reason}") from None
            return check_finite(decoded)  # a float WAV can hold NaN and inf
        if dtype == "int16":
            return to_int16(self.samples)
        if np.issubdtype(self.samples.dtype, np.integer):
            return (self.samples / 32768.0).astype(dtype)
        return self.samples.astype(dtype, copy=False)

    def int16(self) -> np.ndarray:
        """The samples as 16-bit PCM (exact for audio that was 16-bit to begin with)."""
        return self.read("int16")

    def _file(self) -> Any:
        return io.BytesIO(self.data) if self.data is not None else self.path


def check_finite(samples: np.ndarray) -> np.ndarray:
    """``samples``, or an error saying how many are NaN or infinite and where the first is.

    Example:
        >>> check_finite(np.array([0.0, np.nan, np.inf]))
        Traceback (most recent call last):
        ...
        espnet3.errors.Espnet3Error: audio holds 2 non-finite samples (NaN or inf), the first at sample 1: it would be written as silence and clipping; fix or drop this row
    """
    if np.issubdtype(samples.dtype, np.floating):
        bad = ~np.isfinite(samples)
        if bad.any():
            first = int(np.argwhere(bad)[0][0])
            raise Espnet3Error(
                f"audio holds {int(bad.sum())} non-finite samples (NaN or inf), the first at "
                f"sample {first}: it would be written as silence and clipping; fix or drop "
                "this row"
            )
    return samples


def to_int16(samples: np.ndarray) -> np.ndarray:
    """16-bit PCM from int16 or float samples; floats are scaled by 32768 (soundfile's scale).

    Example:
        >>> to_int16(np.array([0.5, -1.0, 1.0], np.float32)).tolist()
        [16384, -32768, 32767]
    """
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.int16)
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


def load_audio(value: Any, sampling_rate: int | None = None) -> LoadedAudio:
    """Inspect one row's audio value; encoded audio is probed, not decoded.

    ``sampling_rate`` is needed only for a bare array. Raises :class:`Espnet3Error` saying what
    was found when the value is missing or unreadable.

    Example:
        >>> load_audio({"array": [0.0, 0.5], "sampling_rate": 8000}).num_samples
        2
    """
    if value is None:
        raise Espnet3Error("audio is missing (None): give every row an audio value")
    if isinstance(value, AudioValue):  # before Mapping: its "array" would decode the audio
        return value.loaded()
    if isinstance(value, (str, os.PathLike)):
        return _probe(path=str(value))
    if isinstance(value, Mapping):
        if value.get("array") is not None:
            return _from_samples(value["array"], value.get("sampling_rate") or sampling_rate)
        if value.get("bytes") is not None:
            return _probe(data=value["bytes"], path=value.get("path"))
        if value.get("path"):
            return _probe(path=value["path"])
        raise Espnet3Error(
            f"audio has neither 'array', 'bytes' nor 'path' (keys: {sorted(value)}): "
            "check the audio field of data_info"
        )
    if hasattr(value, "get_all_samples"):  # torchcodec AudioDecoder (datasets >= 4, decoded)
        decoded = value.get_all_samples()
        return _from_samples(decoded.data.numpy().T, decoded.sample_rate)
    if isinstance(value, (np.ndarray, list)) or hasattr(value, "numpy"):
        return _from_samples(value, sampling_rate)
    raise Espnet3Error(
        f"cannot read audio from a {type(value).__name__}: give a path, bytes/path or "
        "array/sampling_rate dict, an array with data_info['sampling_rate'], or an AudioDecoder"
    )


class AudioValue(Mapping):
    """An undecoded ``{"bytes", "path"}`` audio value that also answers like a decoded one.

    ``value["array"]`` decodes the audio (float32; several channels are averaged to one, as
    ``datasets`` does) and ``value["sampling_rate"]`` reads the rate from the header, so a
    ``data_info`` written for decoded rows (``lambda x: x["audio"]["array"]``) works on
    undecoded ones. Iterating it gives only ``bytes`` and ``path``, so copying it never
    decodes. ``column`` names the dataset column it came from.

    Example:
        >>> import numpy as np, soundfile as sf
        >>> buf = io.BytesIO(); sf.write(buf, np.array([0, 8192], np.int16), 8000, format="WAV")
        >>> value = AudioValue({"bytes": buf.getvalue(), "path": None}, column="audio")
        >>> value["array"].tolist(), value["sampling_rate"], sorted(value)
        ([0.0, 0.25], 8000, ['bytes', 'path'])
    """

    __slots__ = ("column", "_value", "_loaded", "_array", "_digest")

    def __init__(self, value: Mapping[str, Any], column: str | None = None):
        self.column = column
        self._value = value
        self._loaded: LoadedAudio | None = None
        self._array: np.ndarray | None = None
        self._digest: bytes | None = None

    def __getitem__(self, key: str) -> Any:
        if key == "array":
            return self.array()
        if key == "sampling_rate":
            return self.loaded().sampling_rate
        if key in ("bytes", "path"):
            return self._value.get(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:  # Mapping's would decode to find "array"
        return key in ("bytes", "path", "array", "sampling_rate")

    def __iter__(self) -> Iterator[str]:
        return iter(("bytes", "path"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return f"AudioValue(column={self.column!r}, path={self._value.get('path')!r})"

    def loaded(self) -> LoadedAudio:
        """The encoded audio, probed (not decoded) once."""
        if self._loaded is None:
            data, path = self._value.get("bytes"), self._value.get("path")
            if data is None and not path:
                raise Espnet3Error(
                    f"audio column {self.column!r} holds neither bytes nor a path: give every "
                    "row an audio value"
                )
            self._loaded = _probe(data=data, path=path) if data is not None else _probe(path=path)
        return self._loaded

    def array(self) -> np.ndarray:
        """The samples as ``datasets`` decodes them: float32, ``(frames,)``."""
        if self._array is None:
            samples = self.loaded().read("float32")
            if samples.ndim > 1:
                samples = samples.mean(axis=1, dtype=np.float32)
            self._array, self._digest = samples, _digest(samples)
        return self._array

    def is_own_array(self, value: Any) -> bool:
        """True when ``value`` is this audio's :meth:`array`, unchanged, of a one-channel file.

        Such an array is the file itself, so a cut can point at the encoded audio instead of
        storing the samples again.
        """
        return (
            value is self._array
            and self.loaded().num_channels == 1
            and _digest(value) == self._digest
        )


def _digest(samples: np.ndarray) -> bytes:
    # Catches arrays a data_info function changed in place before returning them.
    return hashlib.blake2b(np.ascontiguousarray(samples).data, digest_size=16).digest()


def _from_samples(array: Any, sampling_rate: int | None) -> LoadedAudio:
    if sampling_rate is None:
        raise Espnet3Error(
            "audio is a bare array without a sampling rate: add a 'sampling_rate' entry to "
            "data_info (a column name or a function of the row)"
        )
    samples = np.asarray(array.numpy() if hasattr(array, "numpy") else array)
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T  # (channels, frames) as torch and lhotse use -> soundfile's layout
    if samples.size == 0:
        raise Espnet3Error("audio is empty (0 samples)")
    check_finite(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    return LoadedAudio(int(sampling_rate), samples.shape[0], channels, samples=samples)


def _probe(data: bytes | None = None, path: str | None = None) -> LoadedAudio:
    where = f"{len(data)} bytes" if data is not None else repr(path)
    if data is None and not Path(path).is_file():
        raise Espnet3Error(f"audio file {path!r} does not exist: check the path column")
    if data is not None and (header := _pcm_wav_header(data)) is not None:
        return LoadedAudio(*header, data=data, path=path, format="wav")
    try:
        info = sf.info(io.BytesIO(data) if data is not None else path)
    except Exception as exc:  # soundfile raises several types for corrupt input
        reason = getattr(exc, "error_string", None) or str(exc)  # not "<BytesIO at 0x...>"
        raise Espnet3Error(f"audio ({where}) is unreadable: {reason}") from None
    if info.frames <= 0:
        raise Espnet3Error(f"audio ({where}) is empty (0 samples)")
    if info.channels < 1 or info.samplerate <= 0:
        raise Espnet3Error(
            f"audio ({where}) declares {info.channels} channel(s) at {info.samplerate} Hz: the "
            "header is corrupt; replace the file"
        )
    return LoadedAudio(
        int(info.samplerate),
        int(info.frames),
        int(info.channels),
        data=data,
        path=path,
        format=info.format.lower(),
    )


_WAVE_FORMAT_PCM = 1


def wav_truncated(path: str | os.PathLike) -> bool:
    """Whether the RIFF/WAVE file at ``path`` holds fewer bytes than its header says (a copy
    cut short, a disk that filled up); ``False`` for anything it cannot tell. Reads the header
    only.

    Example:
        >>> import tempfile, numpy as np, soundfile as sf
        >>> wav = tempfile.mktemp(suffix=".wav"); sf.write(wav, np.zeros(800, np.int16), 8000)
        >>> wav_truncated(wav)
        False
        >>> os.truncate(wav, 900); wav_truncated(wav)
        True
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    offset = 12
    while offset + 8 <= len(head):
        chunk, length = (
            head[offset : offset + 4],
            int.from_bytes(head[offset + 4 : offset + 8], "little"),
        )
        if chunk == b"data":
            return offset + 8 + length > size
        offset += 8 + length + (length & 1)
    return offset + 8 > size  # cut before its data chunk


def _pcm_wav_header(data: bytes) -> tuple[int, int, int] | None:
    """``(rate, frames, channels)`` of a plain PCM WAV, read from its header; else ``None``.

    Ten times cheaper than ``sf.info``, which opens a decoder. Only the common case is handled
    (RIFF/WAVE, a ``fmt `` chunk of format 1, a non-empty ``data`` chunk); anything else, from
    WAVE_FORMAT_EXTENSIBLE to a corrupt header, returns ``None`` and soundfile decides. The
    frame count is capped by the bytes present, as soundfile does for a truncated file.

    Example:
        >>> import numpy as np, soundfile as sf
        >>> buf = io.BytesIO(); sf.write(buf, np.zeros((5, 2), np.int16), 8000, format="WAV")
        >>> _pcm_wav_header(buf.getvalue())
        (8000, 5, 2)
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt, offset = None, 12
    while offset + 8 <= len(data):
        chunk, size = (
            data[offset : offset + 4],
            int.from_bytes(data[offset + 4 : offset + 8], "little"),
        )
        body = offset + 8
        if chunk == b"fmt " and size >= 16:
            if body + 16 > len(data):
                return None  # cut inside the header: soundfile says what is wrong
            fmt = struct.unpack_from("<HHIIHH", data, body)
        elif chunk == b"data":
            if fmt is None or fmt[0] != _WAVE_FORMAT_PCM or fmt[4] == 0:
                return None
            _, channels, rate, _, block_align, bits = fmt
            if channels < 1 or block_align != channels * ((bits + 7) // 8):
                return None  # an inconsistent header: soundfile says what is wrong
            frames = min(size, len(data) - body) // block_align
            return (rate, frames, channels) if frames > 0 and rate > 0 else None
        offset = body + size + (size & 1)  # chunks are padded to an even size
    return None
