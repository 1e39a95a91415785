"""Write one artifact a runner produced (an array, a waveform, a dict, any object) to a file.

The type decides the format unless ``field_config`` names one: a ``dict`` is JSON, a NumPy
array or CPU tensor is ``.npy``, anything else a pickle; ``{"type": "wav", "sample_rate":
16000}`` writes a WAV. ``{"writer": {"_target_": "pkg.fn", **options}}`` calls your function
as ``fn(value=..., output_path=..., **options)``, which must return the path it wrote. The
file's suffix follows its format; it is written to a temporary file and renamed, so it is
either whole or absent. This is upstream ESPnet3's ``write_artifact``.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_artifact(np.zeros(3), d / "utt1").name
    'utt1.npy'
    >>> write_artifact({"speaker": "spk1"}, d / "meta" / "utt1").read_text()
    '{\\n  "speaker": "spk1"\\n}'
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.errors import ConfigError
from espnet3.utils.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from espnet3.utils.config_utils import convert_to_dict
from espnet3.utils.imports import import_object

SUFFIXES = {"wav": ".wav", "npy": ".npy", "json": ".json", "pickle": ".pkl"}


def write_artifact(value: Any, output_path: str | os.PathLike, field_config: Any = None) -> Path:
    """Write ``value`` to ``output_path`` (its suffix set by the format); the path written."""
    output_path = Path(output_path)
    config = dict(convert_to_dict(field_config) or {})
    writer = config.pop("writer", None)
    type_name = config.pop("type", None)
    if writer is not None:
        writer = dict(convert_to_dict(writer))
        function = import_object(writer.pop("_target_"))
        written = function(value=value, output_path=output_path, **writer, **config)
        if not isinstance(written, (str, os.PathLike)):
            raise TypeError(
                f"Artifact writers must return a path-like value: {function.__qualname__} "
                f"returned {type(written).__name__}"
            )
        if not Path(written).exists():
            raise FileNotFoundError(f"Artifact writer returned a missing path: {written}")
        return Path(written)
    type_name = type_name or infer_artifact_type(value)
    if type_name not in SUFFIXES:
        raise ConfigError(
            f"Unsupported artifact type: {type_name}; use one of {', '.join(SUFFIXES)} or a writer"
        )
    path = output_path.with_suffix(SUFFIXES[type_name])
    path.parent.mkdir(parents=True, exist_ok=True)
    value = _cpu(value)
    if type_name == "wav":
        rate = config.get("sample_rate")
        if rate is None:
            raise ConfigError(f"WAV artifacts require `sample_rate`: set it for {output_path}")
        import soundfile as sf

        with atomic_path(path) as tmp:
            sf.write(tmp, np.asarray(value), int(rate), format="WAV")
    elif type_name == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value))
        atomic_write_bytes(path, buffer.getvalue())
    elif type_name == "json":
        atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=2))
    else:
        atomic_write_bytes(path, pickle.dumps(value))
    return path


def infer_artifact_type(value: Any) -> str:
    """The format :func:`write_artifact` picks for ``value``.

    Example:
        >>> infer_artifact_type({"a": 1}), infer_artifact_type(np.zeros(1)), infer_artifact_type(1)
        ('json', 'npy', 'pickle')
    """
    if isinstance(value, np.ndarray) or _is_tensor(value):
        return "npy"
    if isinstance(value, dict):
        return "json"
    return "pickle"


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _cpu(value: Any) -> Any:
    """A tensor as a NumPy array; a CUDA tensor is refused."""
    if not _is_tensor(value):
        return value
    if value.is_cuda:
        raise ConfigError(
            "CUDA tensors are not supported for artifact writing. Move the tensor to CPU "
            "before returning it from inference."
        )
    return value.detach().numpy()
