"""A shard's results file: one JSON line per result, then a line that marks it complete.

The file is written through a temporary file and an atomic rename, so it either does not
exist or is whole; the closing ``{"complete": true, "count": N}`` line and a line count check
also reject a file that was truncated or copied partially afterwards.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "shard.jsonl"
    >>> write_results(path, [(0, {"y": 1}), (2, {"y": 5})])
    2
    >>> is_complete(path), list(read_results(path))
    (True, [(0, {'y': 1}), (2, {'y': 5})])
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import atomic_open


def write_results(path: str | os.PathLike, results: Iterable[tuple[int, Any]]) -> int:
    """Stream ``(index, result)`` pairs into ``path`` atomically; return how many.

    A result JSON cannot encode is an error naming its index, and nothing is written.
    """
    count = 0
    with atomic_open(path) as f:
        for index, result in results:
            try:
                line = json.dumps({"index": index, "result": result}, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise Espnet3Error(
                    f"the result of index {index} cannot be written as JSON ({exc}): return "
                    f"plain values from forward (e.g. array.tolist(), sorted(a_set))"
                ) from None
            f.write(line + "\n")
            count += 1
        f.write(json.dumps({"complete": True, "count": count}) + "\n")
    return count


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` ends with its completion line and holds the lines it announces."""
    try:
        with open(path, "rb") as f:
            n_lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        marker = json.loads(last)
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("complete") is True
        and marker.get("count") == n_lines - 1
    )


def read_results(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield the ``(index, result)`` pairs of a complete results file, one line at a time."""
    if not is_complete(path):
        raise Espnet3Error(
            f"results file {str(path)!r} is missing or incomplete: run the shard again "
            f"(re-running the same runner call resubmits it)"
        )
    with open(Path(path), encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if "index" not in record:
                return
            yield record["index"], record["result"]
