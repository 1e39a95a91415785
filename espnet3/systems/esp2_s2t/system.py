"""Speech-to-text recipes (``esp2_s2t``): ``create_dataset`` and ``collect_stats``.

Example:
    >>> S2TSystem.__mro__[1].__name__
    'BaseSystem'
"""

from espnet3.systems.base.system import BaseSystem


class S2TSystem(BaseSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["S2TSystem"]
