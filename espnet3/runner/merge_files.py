"""What a runner's ``merge`` usually does with its shards' files: concatenate them in order.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for k, text in enumerate(["a 1\\n", "b 2\\n"]):
    ...     (root / f"split.{k}").mkdir()
    ...     _ = (root / f"split.{k}" / "text").write_text(text)
    >>> concatenate_shard_files([root / "split.0", root / "split.1"], "text", root / "text")
    True
    >>> (root / "text").read_text()
    'a 1\\nb 2\\n'
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from espnet3.utils.atomic import atomic_open


def concatenate_shard_files(
    shard_dirs: Sequence[str | os.PathLike], relative_name: str, out_path: str | os.PathLike
) -> bool:
    """Write the ``relative_name`` file of each shard directory, in the given order, into
    ``out_path``; whether any shard had one.

    Fragments are copied byte for byte (no separator is added) and ``out_path`` is replaced
    atomically, so a reader never sees half of it. When no shard has the file, ``out_path`` is
    removed and the result is ``False``, as upstream ESPnet3 does.
    """
    fragments = [Path(d) / relative_name for d in shard_dirs]
    fragments = [f for f in fragments if f.is_file()]
    out_path = Path(out_path)
    if not fragments:
        with contextlib.suppress(FileNotFoundError):
            out_path.unlink()
        return False
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_path, "wb") as out:
        for fragment in fragments:
            with open(fragment, "rb") as f:
                shutil.copyfileobj(f, out)
    return True
