"""Ctrl-C and SIGTERM around steps that must not stop half-way (a cluster's start or close).

Python raises ``KeyboardInterrupt`` (or, with espnet3's handler, ``SystemExit``) wherever the
main thread is when the signal comes. Inside distributed's start or close that leaves the
cluster half-built or stuck "closing", which then costs a 10 s wait at exit. In a
:func:`deferred` block the signals are only recorded; :func:`raise_deferred` acts on them
once the step is over.

Example:
    >>> import os
    >>> with deferred() as caught:
    ...     os.kill(os.getpid(), signal.SIGTERM)  # recorded: the process goes on
    >>> caught
    [15]
    >>> raise_deferred(caught)
    Traceback (most recent call last):
    ...
    SystemExit: 143
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

Handler = Callable[[int, Any], None]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def handled(handlers: Mapping[int, Handler]) -> Iterator[None]:
    """Use ``handlers`` in the block, then restore the previous ones.

    A signal already ignored (``nohup``, or a SIGTERM being acted on) stays ignored. Only the
    main thread may set handlers; elsewhere the block runs with the signals unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, handler)
        for signum, handler in handlers.items()
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def deferred(
    signums: tuple[int, ...] = STOP_SIGNALS, on_first: Callable[[], None] | None = None
) -> Iterator[list[int]]:
    """Record ``signums`` in the yielded list instead of acting on them; ``on_first`` runs at
    the first one (e.g. to end worker processes at once so that the step finishes sooner)."""
    caught: list[int] = []

    def record(signum: int, frame: Any) -> None:
        caught.append(signum)
        if on_first is not None and len(caught) == 1:
            on_first()

    with handled(dict.fromkeys(signums, record)):
        yield caught


def raise_deferred(caught: list[int]) -> None:
    """Raise what the recorded signals would have: SIGTERM wins over Ctrl-C."""
    if signal.SIGTERM in caught:
        raise SystemExit(128 + signal.SIGTERM)
    if caught:
        raise KeyboardInterrupt
