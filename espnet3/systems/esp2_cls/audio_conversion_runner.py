"""``esp2_cls``'s name for :mod:`espnet3.systems.cls.audio_conversion_runner`.

Example:
    >>> AudioConversionRunner.__module__
    'espnet3.systems.cls.audio_conversion_runner'
"""

from espnet3.systems.cls.audio_conversion_runner import AudioConversionRunner

__all__ = ["AudioConversionRunner"]
