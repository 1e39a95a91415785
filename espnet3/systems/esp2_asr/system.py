"""``esp2_asr`` recipes: the ASR system (:mod:`espnet3.systems.asr.system`) under its ESPnet2 name.

Example:
    >>> ASRSystem.__module__
    'espnet3.systems.asr.system'
"""

from espnet3.systems.asr.system import ASRSystem

__all__ = ["ASRSystem"]
