"""Singing voice synthesis recipes (``egs3/<corpus>/svs``): the TTS data stages.

Example:
    >>> SVSSystem.__mro__[1].__name__
    'TTSSystem'
"""

from espnet3.systems.tts.system import TTSSystem


class SVSSystem(TTSSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["SVSSystem"]
