"""What every scheduler is given: the fields of a validated ``parallel:`` section.

:class:`ParallelSettings` is plain data. :class:`espnet3.parallel.config.ParallelConfig` is
this data read and checked (``from_any``) and answering for its scheduler (``.scheduler``);
schedulers take the data alone, so nothing here needs the config module.

Example:
    >>> ParallelSettings(env="local", n_workers=2).to_dict()["n_workers"]
    2
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from espnet3.parallel.container import ContainerSpec


@dataclass(frozen=True)
class ParallelSettings:
    """The fields of ``parallel:``; build them with ``ParallelConfig.from_any``."""

    env: str = "none"
    n_workers: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    container: ContainerSpec | None = None
    security: str = "auto"
    min_workers: int = 1
    startup_timeout: float = 600.0
    log_dir: str | None = None
    item_timeout: float | None = None
    #: ``now``, ``when_worth_it``, or ``None``: the caller's default (see ``get_client``).
    start: str | None = None
    #: Shard locks whose holder cannot be checked are taken over instead of refused.
    allow_overwrite_lock: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A plain, deep-copied dict that ``ParallelConfig.from_any`` turns back into an equal
        config."""
        return {
            "env": self.env,
            "n_workers": self.n_workers,
            "options": copy.deepcopy(dict(self.options)),
            "container": self.container.to_dict() if self.container else None,
            "security": self.security,
            "min_workers": self.min_workers,
            "startup_timeout": self.startup_timeout,
            "log_dir": self.log_dir,
            "item_timeout": self.item_timeout,
            "start": self.start,
            "allow_overwrite_lock": self.allow_overwrite_lock,
        }


__all__ = ["ParallelSettings"]
