"""Phone recognition recipes (``egs3/<corpus>/pr``): ``create_dataset``.

Example:
    >>> PRSystem.__mro__[1].__name__
    'BaseSystem'
"""

from espnet3.systems.base.system import BaseSystem


class PRSystem(BaseSystem):
    """The system of these recipes; training and inference stages are not part of espnet3."""


__all__ = ["PRSystem"]
