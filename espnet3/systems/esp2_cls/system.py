"""``esp2_cls`` recipes: the classification system under its ESPnet2 name.

Example:
    >>> Esp2ClsSystem.__mro__[1].__name__
    'CLSSystem'
"""

from espnet3.systems.cls.system import CLSSystem


class Esp2ClsSystem(CLSSystem):
    """The classification system (:class:`~espnet3.systems.cls.system.CLSSystem`)."""


__all__ = ["Esp2ClsSystem"]
