"""Read BEATs token targets by dataset index from a ``target.scp`` (``<idx> <id> <id> ...``).

Only each line's byte offset and length are kept (12 bytes an item), and a line is read with
``os.pread`` from a descriptor each process opens for itself, so the readers of many data-loader
workers share nothing and a corpus of millions of clips costs megabytes, not gigabytes.

Example:
    >>> import tempfile, pathlib
    >>> scp = pathlib.Path(tempfile.mkdtemp()) / "target.scp"
    >>> _ = scp.write_text("1 7 7 3\\n0 5 2\\n")
    >>> reader = BeatsTargetReader(scp, num_items=2)
    >>> reader[0], reader[1], len(reader)
    ('5 2', '7 7 3', 2)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from espnet3.errors import ConfigError


class BeatsTargetReader:
    """Random access to the targets of ``target_path``; every index in ``[0, num_items)`` must
    have exactly one line."""

    def __init__(self, target_path: str | os.PathLike, num_items: int):
        self.path = Path(target_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"BEATs target file not found: {self.path}")
        self.offsets = np.full(num_items, -1, dtype=np.int64)
        self.lengths = np.zeros(num_items, dtype=np.int32)
        position = 0
        with open(self.path, "rb") as f:
            for number, line in enumerate(f, 1):
                index, _, _ = line.partition(b" ")
                try:
                    idx = int(index)
                except ValueError:
                    raise ConfigError(
                        f"{self.path}:{number} does not start with an index"
                    ) from None
                if not 0 <= idx < num_items or self.offsets[idx] >= 0:
                    what = "out of range" if not 0 <= idx < num_items else "repeated"
                    raise ConfigError(f"{self.path}:{number}: index {idx} is {what}")
                self.offsets[idx], self.lengths[idx] = position, len(line)
                position += len(line)
        missing = np.flatnonzero(self.offsets < 0)
        if missing.size:
            raise ConfigError(
                f"{self.path} has no target for {missing.size} of {num_items} item(s) (first: "
                f"index {missing[0]}): run the stage that writes it again"
            )
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, idx: int) -> str:
        """The target of item ``idx``: its token ids, space-separated."""
        if self._pid != os.getpid():  # a forked worker opens its own descriptor
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        line = os.pread(self._fd, int(self.lengths[idx]), int(self.offsets[idx]))
        return line.decode("utf-8").rstrip("\n").partition(" ")[2]
