"""The environment of :class:`~espnet3.systems.cls.audio_conversion_runner.AudioConversionRunner`.

``params``: ``jobs``, the ``(source, destination)`` pairs to convert, and ``sampling_rate``.

Example:
    >>> env = AudioConversionProvider(params={"jobs": [("a.flac", "a.wav")],
    ...                                        "sampling_rate": 16000}).build_env_local()
    >>> env["jobs"], env["sampling_rate"]
    ([('a.flac', 'a.wav')], 16000)
"""

from __future__ import annotations

from typing import Any

from espnet3.errors import ConfigError
from espnet3.runner.provider import EnvironmentProvider
from espnet3.utils.checks import check_positive


class AudioConversionProvider(EnvironmentProvider):
    """``{"jobs": [(source, destination), ...], "sampling_rate": int}``."""

    def build_env(self) -> dict[str, Any]:
        jobs = self.params.get("jobs")
        if not isinstance(jobs, (list, tuple)):
            raise ConfigError(
                "AudioConversionProvider needs params['jobs']: a list of (source, destination) "
                f"pairs, got {type(jobs).__name__}"
            )
        rate = check_positive("sampling_rate", self.params.get("sampling_rate"), none_ok=False)
        return {"jobs": [(str(src), str(dst)) for src, dst in jobs], "sampling_rate": rate}
