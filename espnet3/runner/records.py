"""A shard runner whose results are small JSON records, merged back in index order.

Each shard writes the records ``forward`` returns (a dict, or a list of dicts for a batch) to
``split.N/results.jsonl``; :meth:`RecordsRunner.merge` reads every shard's file and sorts the
records by their ``"idx"``. Stages that check or convert files one by one (durations, audio
conversion) are this shape.

Example:
    >>> import tempfile
    >>> from espnet3.runner.provider import EnvironmentProvider
    >>> class Lengths(RecordsRunner):
    ...     @staticmethod
    ...     def forward(idx, **env):
    ...         return {"idx": idx, "n": len(str(idx))}
    >>> class Empty(EnvironmentProvider):
    ...     def build_env(self):
    ...         return {}
    >>> Lengths(Empty(), output_dir=tempfile.mkdtemp())([9, 10])
    [{'idx': 9, 'n': 1}, {'idx': 10, 'n': 2}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from espnet3.runner.base_runner import BaseRunner

RECORDS = "results.jsonl"


class RecordsRunner(BaseRunner):
    """A runner whose ``forward`` returns ``{"idx": ..., ...}`` records (module docstring)."""

    @staticmethod
    def open_writers(shard_dir: Path, **env: Any) -> dict[str, Any]:
        return {"results": open(Path(shard_dir) / RECORDS, "w", encoding="utf-8")}

    @staticmethod
    def write_record(
        writers: dict[str, Any], result: Any, state: dict[str, Any], **env: Any
    ) -> None:
        for record in result if isinstance(result, list) else [result]:
            writers["results"].write(json.dumps(record) + "\n")

    def merge(self, shard_dirs: list[Path]) -> list[dict[str, Any]]:
        """Every shard's records, by ``idx``."""
        records = []
        for shard in shard_dirs:
            path = Path(shard) / RECORDS
            if path.is_file():
                with open(path, encoding="utf-8") as f:
                    records.extend(json.loads(line) for line in f if line.strip())
        return sorted(records, key=lambda record: record["idx"])
