"""Codec recipes (``esp2_codec``): ``create_dataset`` and ``collect_stats``.

Example:
    >>> CodecSystem.__mro__[1].__name__
    'BaseSystem'
"""

from espnet3.systems.base.system import BaseSystem


class CodecSystem(BaseSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["CodecSystem"]
