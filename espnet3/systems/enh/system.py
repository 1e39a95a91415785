"""Speech enhancement recipes (``egs3/<corpus>/enh``): ``create_dataset`` and ``collect_stats``.

Example:
    >>> EnhancementSystem.__mro__[1].__name__
    'BaseSystem'
"""

from espnet3.systems.base.system import BaseSystem


class EnhancementSystem(BaseSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["EnhancementSystem"]
