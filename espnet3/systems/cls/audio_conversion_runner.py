"""Convert audio files to mono 16-bit WAV at one sampling rate with ffmpeg, in shards.

``forward(idx)`` converts job ``idx`` of the provider's ``jobs``; a destination that already
exists is kept (``"converted": False``), so a rerun only converts what is missing. Each file
is written to a temporary name and renamed, so a killed conversion never leaves a WAV that
looks whole. ffmpeg reads whatever the corpus holds (FLAC, MP3, the audio of MP4 video ...).

Example (``ffmpeg`` on PATH)::

    provider = AudioConversionProvider(params={"jobs": [(src, dst)], "sampling_rate": 16000})
    AudioConversionRunner(provider, output_dir="data/conversion_shards", resume=False)([0])
    # [{'idx': 0, 'source': ..., 'destination': ..., 'converted': True}]
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from espnet3.errors import Espnet3Error, SetupError
from espnet3.runner.records import RecordsRunner
from espnet3.utils.atomic import atomic_path


class AudioConversionRunner(RecordsRunner):
    """One record ``{"idx", "source", "destination", "converted"}`` per job."""

    @staticmethod
    def forward(
        idx: int | Sequence[int],
        jobs: Sequence[tuple[str, str]],
        sampling_rate: int,
        **env: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(idx, int):
            return _convert(idx, *jobs[idx], sampling_rate)
        return [_convert(i, *jobs[i], sampling_rate) for i in idx]


def _convert(idx: int, source: str, destination: str, rate: int) -> dict[str, Any]:
    record = {"idx": idx, "source": source, "destination": destination, "converted": False}
    if os.path.exists(destination):
        return record
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SetupError(
            "AudioConversionRunner converts with ffmpeg, which is not on PATH: install it "
            "(apt-get install ffmpeg, conda install -c conda-forge ffmpeg)"
        )
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    with atomic_path(destination, durable=False) as tmp:
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", source]
        command += ["-ac", "1", "-ar", str(rate), "-c:a", "pcm_s16le", "-f", "wav", tmp]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise Espnet3Error(
                f"ffmpeg could not convert {source} (exit code {done.returncode}): "
                f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no message'}"
            )
    return {**record, "converted": True}
