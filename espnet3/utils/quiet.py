"""Logging switched off for a block (a cluster closing after Ctrl-C logs about its workers).

Example:
    >>> import logging
    >>> with logging_off():
    ...     logging.getLogger("espnet3").error("not shown")
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def logging_off() -> Iterator[None]:
    """No log records at all in the block (e.g. distributed's about a cluster closing).

    Example:
        >>> with logging_off():
        ...     logging.getLogger("espnet3").error("not shown")
    """
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)
