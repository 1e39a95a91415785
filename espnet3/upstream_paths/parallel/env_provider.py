"""Upstream ESPnet3's import path of :class:`espnet3.runner.provider.EnvironmentProvider`.

Example:
    >>> from espnet3.parallel.env_provider import EnvironmentProvider
    >>> EnvironmentProvider.__module__
    'espnet3.runner.provider'
"""

from espnet3.runner.provider import EnvironmentProvider

__all__ = ["EnvironmentProvider"]
