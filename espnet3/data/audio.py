"""Turn whatever a dataset row holds for audio into samples, without losing a bit.

Hugging Face ``datasets`` hands audio over in several shapes, depending on the column type and
on whether decoding is on: ``{"bytes", "path"}`` (``Audio(decode=False)``), ``{"array",
"sampling_rate"}`` (older decoded form, or a plain struct column), a torchcodec
``AudioDecoder`` (``datasets`` >= 4 with decoding on), a bare array (with the rate given
separately) or a file path. :func:`load_audio` accepts them all and keeps the encoded bytes or
the path when there is one, so that writers can store the original file unchanged instead of
re-encoding it.

Example:
    >>> import io, numpy as np, soundfile as sf
    >>> buf = io.BytesIO(); sf.write(buf, np.array([0, 7, -7], np.int16), 8000, format="WAV")
    >>> audio = load_audio({"bytes": buf.getvalue(), "path": None})
    >>> audio.int16().tolist(), audio.sampling_rate, audio.num_samples
    ([0, 7, -7], 8000, 3)
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Mapping
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
            return sf.read(self._file(), dtype=dtype, always_2d=False)[0]
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
    return LoadedAudio(
        int(info.samplerate),
        int(info.frames),
        int(info.channels),
        data=data,
        path=path,
        format=info.format.lower(),
    )


_WAVE_FORMAT_PCM = 1


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
            _, channels, rate, _, block_align, _ = fmt
            frames = min(size, len(data) - body) // block_align
            return (rate, frames, channels) if frames > 0 and rate > 0 else None
        offset = body + size + (size & 1)  # chunks are padded to an even size
    return None
