"""Upstream ESPnet3's import path of :class:`espnet3.runner.inference_provider.InferenceProvider`.

Example:
    >>> from espnet3.parallel.inference_provider import InferenceProvider
    >>> InferenceProvider.__module__
    'espnet3.runner.inference_provider'
"""

from espnet3.runner.inference_provider import InferenceProvider

__all__ = ["InferenceProvider"]
