"""A provider whose environment is a dataset, a model and the params.

Example:
    >>> class Doubling(InferenceProvider):
    ...     @staticmethod
    ...     def build_dataset(cfg):
    ...         return list(range(cfg.n))
    ...     @staticmethod
    ...     def build_model(cfg):
    ...         return lambda x: 2 * x
    >>> env = Doubling({"n": 3}, {"beam": 4}).build_env_local()
    >>> env["dataset"], env["model"](5), env["beam"]
    ([0, 1, 2], 10, 4)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from espnet3.errors import ConfigError
from espnet3.runner.provider import EnvironmentProvider


class InferenceProvider(EnvironmentProvider):
    """Environment ``{"dataset": build_dataset(cfg), "model": build_model(cfg), **params}``.

    Subclasses implement the two static builders; both receive the resolved ``DictConfig``.
    As in upstream ESPnet3, this process's environment is built when the provider is made,
    so a bad config fails at once; each worker builds its own.
    """

    def __init__(self, config: Any = None, params: Mapping[str, Any] | None = None):
        super().__init__(config, params)
        self.build_env_local()

    @staticmethod
    def build_dataset(cfg: Any) -> Any:
        """Build the dataset that ``forward`` indexes."""
        raise NotImplementedError("an InferenceProvider must implement build_dataset(cfg)")

    @staticmethod
    def build_model(cfg: Any) -> Any:
        """Build the model that ``forward`` applies."""
        raise NotImplementedError("an InferenceProvider must implement build_model(cfg)")

    def build_env(self) -> dict[str, Any]:
        clash = {"dataset", "model"} & self.params.keys()
        if clash:
            raise ConfigError(
                f"{type(self).__qualname__} params {sorted(clash)} would replace the built "
                f"dataset/model: rename them"
            )
        return {
            "dataset": self.build_dataset(self.config),
            "model": self.build_model(self.config),
            **self.params,
        }
