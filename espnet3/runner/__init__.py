"""Run a ``forward`` over dataset indices with an environment built once per process.

Example:
    >>> from espnet3.runner.base_runner import BaseRunner
    >>> from espnet3.runner.inference_provider import InferenceProvider
"""
