"""OpenBEATs recipes: ``create_dataset`` (pre-training itself is not part of espnet3).

Upstream's template also passes ``train_tokenizer_config``, the tokenizer-training config.

Example:
    >>> OpenBeatsSystem().train_tokenizer_config is None
    True
"""

from __future__ import annotations

from typing import Any

from espnet3.systems.base.system import BaseSystem


class OpenBeatsSystem(BaseSystem):
    """A BEATs pre-training recipe's system."""

    def __init__(self, *args: Any, train_tokenizer_config: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.train_tokenizer_config = train_tokenizer_config
