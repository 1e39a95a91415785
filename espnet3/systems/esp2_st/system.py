"""Speech translation recipes (``esp2_st``): the ASR data stages.

Example:
    >>> STSystem.__mro__[1].__name__
    'ASRSystem'
"""

from espnet3.systems.asr.system import ASRSystem


class STSystem(ASRSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["STSystem"]
