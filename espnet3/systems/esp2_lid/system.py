"""Language identification recipes (``esp2_lid``): ``create_dataset`` and ``collect_stats``.

Example:
    >>> LIDSystem.__mro__[1].__name__
    'BaseSystem'
"""

from espnet3.systems.base.system import BaseSystem


class LIDSystem(BaseSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["LIDSystem"]
