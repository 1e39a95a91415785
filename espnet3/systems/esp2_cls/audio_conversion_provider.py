"""``esp2_cls``'s name for :mod:`espnet3.systems.cls.audio_conversion_provider`.

Example:
    >>> AudioConversionProvider.__module__
    'espnet3.systems.cls.audio_conversion_provider'
"""

from espnet3.systems.cls.audio_conversion_provider import AudioConversionProvider

__all__ = ["AudioConversionProvider"]
