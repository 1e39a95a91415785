"""Upstream ESPnet3's inference-stage import path of the dataset/model provider.

Example:
    >>> from espnet3.systems.base.inference_provider import InferenceProvider
    >>> InferenceProvider.__module__
    'espnet3.runner.inference_provider'
"""

from espnet3.runner.inference_provider import InferenceProvider

__all__ = ["InferenceProvider"]
