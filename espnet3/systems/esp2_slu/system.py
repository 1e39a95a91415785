"""Spoken language understanding recipes (``esp2_slu``): the ASR data stages.

Example:
    >>> Esp2SluSystem.__mro__[1].__name__
    'ASRSystem'
"""

from espnet3.systems.asr.system import ASRSystem


class Esp2SluSystem(ASRSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["Esp2SluSystem"]
