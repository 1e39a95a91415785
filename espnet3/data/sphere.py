"""Read uncompressed 16-bit PCM NIST SPHERE files (the format of AN4, TIMIT, WSJ).

A SPHERE file is an ASCII header (``NIST_1A``, the header size in bytes, then ``name -type
value`` lines up to ``end_head``) followed by raw samples. ``sample_byte_format`` says the byte
order: ``01`` little-endian, ``10`` big-endian. Compressed (``shorten``) files are refused
rather than misread.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> header = (b"NIST_1A\\n   1024\\nsample_rate -i 16000\\nsample_n_bytes -i 2\\n"
    ...           b"sample_byte_format -s2 10\\nchannel_count -i 1\\nend_head\\n")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.sph"
    >>> _ = path.write_bytes(header.ljust(1024) + np.array([1, -2], ">i2").tobytes())
    >>> samples, rate = read_sphere(path)
    >>> samples.tolist(), rate
    ([1, -2], 16000)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from espnet3.errors import Espnet3Error

_BYTE_ORDERS = {"01": "<", "10": ">", "1": "<"}


def read_sphere_header(path: str | os.PathLike) -> dict[str, int | str]:
    """Return the header fields of a SPHERE file, plus ``header_size``.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "cen8-fcaw-b.sph"
        >>> _ = path.write_bytes(b"NIST_1A\\n   1024\\nsample_rate -i 16000\\nend_head\\n".ljust(1024))
        >>> read_sphere_header(path)
        {'header_size': 1024, 'sample_rate': 16000}
    """
    with open(path, "rb") as f:
        head = f.read(1024)
    lines = head.split(b"\n")
    if len(lines) < 2 or lines[0].strip() != b"NIST_1A":
        raise Espnet3Error(f"{path} is not a NIST SPHERE file (no NIST_1A magic): check the path")
    size = int(lines[1].strip())
    if size > len(head):
        with open(path, "rb") as f:
            lines = f.read(size).split(b"\n")
    fields: dict[str, int | str] = {"header_size": size}
    for line in lines[2:]:
        parts = line.decode("ascii", "replace").strip().split(None, 2)
        if not parts or parts[0] == "end_head":
            break
        if len(parts) == 3:
            name, kind, value = parts
            fields[name] = int(value) if kind == "-i" else value
    return fields


def read_sphere(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Return ``(samples, sample_rate)``: int16 samples, shape ``(n,)`` or ``(n, channels)``.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "stereo.sph"
        >>> header = b"NIST_1A\\n   1024\\nsample_rate -i 8000\\nchannel_count -i 2\\nend_head\\n"
        >>> _ = path.write_bytes(header.ljust(1024) + np.array([1, 2, 3, 4], "<i2").tobytes())
        >>> samples, rate = read_sphere(path)   # no sample_byte_format: little-endian
        >>> samples.tolist(), samples.dtype.name, rate
        ([[1, 2], [3, 4]], 'int16', 8000)
    """
    header = read_sphere_header(path)
    coding = str(header.get("sample_coding", "pcm"))
    width = header.get("sample_n_bytes", 2)
    if coding != "pcm" or width != 2:
        raise Espnet3Error(
            f"{path}: only uncompressed 16-bit PCM SPHERE is supported, got "
            f"sample_coding={coding!r}, sample_n_bytes={width}: convert it with sph2pipe first"
        )
    order = _BYTE_ORDERS.get(str(header.get("sample_byte_format", "01")))
    if order is None:
        raise Espnet3Error(
            f"{path}: unknown sample_byte_format {header['sample_byte_format']!r}, "
            "expected 01 (little-endian) or 10 (big-endian)"
        )
    raw = Path(path).read_bytes()[int(header["header_size"]) :]
    samples = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=f"{order}i2").astype(np.int16)
    channels = int(header.get("channel_count", 1))
    if "sample_count" in header:  # trailing bytes after the samples are padding, not audio
        samples = samples[: int(header["sample_count"]) * channels]
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels)
    return samples, int(header.get("sample_rate", 16000))
