"""Runner workloads the benchmarks share; importable by workers (the repo root is on their path).

Example:
    >>> SpinRunner(SpinProvider({"cost": 0.0}))(range(3))
    [0, 1, 2]
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import spin
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.inference_provider import InferenceProvider


class SpinProvider(InferenceProvider):
    """``model`` is the per-item CPU cost in seconds; there is no dataset to load."""

    @staticmethod
    def build_dataset(cfg: Any) -> None:
        return None

    @staticmethod
    def build_model(cfg: Any) -> float:
        return float(cfg.cost)


class SpinRunner(BaseRunner):
    """Each item burns ``model`` seconds of CPU and returns its index."""

    @staticmethod
    def forward(idx: int, *, dataset: Any, model: float, **params: Any) -> int:
        spin(model)
        return idx
