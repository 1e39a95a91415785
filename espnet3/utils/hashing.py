"""Name a piece of work by its content: a short digest equal in every process and on every run.

Shard directories, job names and the identity of an async submission are derived from the
work they hold, so that a rerun (in another process, on another day) finds what an earlier run
left instead of starting over.

Example:
    >>> stable_hash("mini_an4", [0, 1, 2]) == stable_hash("mini_an4", [0, 1, 2])
    True
    >>> len(stable_hash({"batch_size": 4}))
    16
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(*parts: Any) -> str:
    """A short hex digest of JSON-like ``parts``, equal in every process and on every run.

    Mapping keys are sorted first, so their order does not matter. Objects JSON cannot encode
    enter by ``repr``, which is stable within one process only.

    Example:
        >>> stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})
        True
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
