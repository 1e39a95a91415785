"""``esp2_gan_tts`` recipes: the TTS data stages.

Example:
    >>> GANTTSSystem.__mro__[1].__name__
    'TTSSystem'
"""

from espnet3.systems.tts.system import TTSSystem


class GANTTSSystem(TTSSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["GANTTSSystem"]
