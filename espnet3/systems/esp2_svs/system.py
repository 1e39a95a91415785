"""``esp2_svs`` recipes: the TTS data stages.

Example:
    >>> SVSSystem.__mro__[1].__name__
    'TTSSystem'
"""

from espnet3.systems.tts.system import TTSSystem


class SVSSystem(TTSSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["SVSSystem"]
