"""espnet3: speech data preparation that runs unchanged on a laptop, a workstation or a cluster.

Example:
    >>> import espnet3
    >>> espnet3.__version__  # doctest: +ELLIPSIS
    '...'
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("espnet3")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
