"""TTS recipes: ``create_dataset``, ``remove_long_short``, ``create_token_list``, ``collect_stats``.

Both middle stages are espnet3's (:mod:`espnet3.components.data.remove_long_short`,
:mod:`espnet3.components.data.create_token_list`), on ``training_config``. Upstream's TTS
template passes ``publish_config``: it is the publication config.

Example::

    TTSSystem(training_config=cfg).create_token_list()
"""

from __future__ import annotations

from typing import Any

from espnet3.components.data.create_token_list import create_token_list
from espnet3.components.data.remove_long_short import remove_long_short
from espnet3.systems.base.system import BaseSystem


class TTSSystem(BaseSystem):
    """A TTS recipe's system."""

    def __init__(
        self,
        *args: Any,
        stage_log_mapping: dict | None = None,
        publish_config: Any = None,
        **kwargs: Any,
    ):
        if publish_config is not None:
            kwargs.setdefault("publication_config", publish_config)
        mapping = {
            "remove_long_short": "training_config.remove_long_short.save_path",
            "create_token_list": "training_config.create_token_list.save_path",
        }
        super().__init__(
            *args, stage_log_mapping={**mapping, **(stage_log_mapping or {})}, **kwargs
        )

    def remove_long_short(self, *args: Any, **kwargs: Any) -> None:
        """Drop utterances outside the configured durations."""
        self._reject_stage_args("remove_long_short", args, kwargs)
        with self.stage_cluster():
            remove_long_short(self.training_config)

    def create_token_list(self, *args: Any, **kwargs: Any) -> None:
        """Write the token list of the training transcripts."""
        self._reject_stage_args("create_token_list", args, kwargs)
        create_token_list(self.training_config)
