"""What the backends and the shard engine read of a runner, as a type.

:class:`~espnet3.runner.base_runner.BaseRunner` calls its backend (:mod:`.backends`), which
runs shards (:mod:`.sharded`, :mod:`.async_backend`) of that same runner; typing them with
this protocol instead of the class keeps the imports pointing one way.

Example:
    >>> {"provider", "output_dir", "resume"} <= set(Runner.__annotations__)
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol


class Runner(Protocol):
    provider: Any
    batch_size: int | None
    output_dir: Path | None
    shard_subdir: str
    resume: bool
    async_mode: bool
    async_specs_dir: Path
    async_result_dir: Path
    async_shard_size: int | None
    async_max_running: int | None
    on_error: str
    item_timeout: float | None
    backend: str | None

    @staticmethod
    def forward(idx: Any, **env: Any) -> Any: ...

    def iter(self, indices: Iterable[int]) -> Iterator[tuple[Any, Any]]: ...

    def merge(self, shard_dirs: Sequence[Path]) -> Any: ...

    def _plan_shards(self, items: Sequence[Any]) -> list[dict[str, Any]]: ...
