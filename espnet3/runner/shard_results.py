"""A shard's results file: one JSON line ``{"index", "result"}`` per result, nothing else.

The file is written through a temporary file and an atomic rename, so it either does not
exist or is whole. A marker beside it, ``<results>.done``, is written after the rename and
holds the file's size and line count: a file truncated or copied partially afterwards no
longer matches it, and a file whose marker is missing is not taken as finished.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "shard.jsonl"
    >>> write_results(path, [(0, {"y": 1}), (2, {"y": 5})])
    2
    >>> is_complete(path), list(read_results(path))
    (True, [(0, {'y': 1}), (2, {'y': 5})])
    >>> path.read_text().splitlines()[-1]
    '{"index": 2, "result": {"y": 5}}'
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import atomic_open, atomic_write_json

DONE_SUFFIX = ".done"


def done_path(path: str | os.PathLike) -> str:
    """Where the completion marker of results file ``path`` lives."""
    return f"{os.fspath(path)}{DONE_SUFFIX}"


def write_results(path: str | os.PathLike, results: Iterable[tuple[Any, Any]]) -> int:
    """Stream ``(index, result)`` pairs into ``path`` atomically, then mark it done.

    A result JSON cannot encode is an error naming its index, and nothing is written.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(done_path(path))  # an earlier run's marker does not describe this file
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
    atomic_write_json(done_path(path), {"count": count, "bytes": os.path.getsize(path)})
    return count


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` has its marker and is still the size the marker records."""
    try:
        marker = json.loads(Path(done_path(path)).read_text())
        return isinstance(marker, dict) and marker.get("bytes") == os.path.getsize(path)
    except (OSError, ValueError):
        return False


def read_results(path: str | os.PathLike) -> Iterator[tuple[Any, Any]]:
    """Yield the ``(index, result)`` pairs of a complete results file, one line at a time."""
    if not is_complete(path):
        raise Espnet3Error(
            f"results file {str(path)!r} is missing or incomplete: run the shard again "
            f"(re-running the same runner call resubmits it)"
        )
    with open(Path(path), encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            yield record["index"], record["result"]
