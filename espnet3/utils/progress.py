"""Progress for people: a bar on a terminal, a line now and then in a batch log.

In a batch job stderr is a file (SLURM's ``.out``): a bar there is noise, and silence leaves
the user guessing. :func:`progress` draws a tqdm bar when stderr is a terminal; otherwise it
logs a line (logger ``espnet3.progress``, INFO) every ``ESPNET3_PROGRESS_SECONDS`` seconds
(default 30), and one when work that lasted that long ends: items done of the total, the rate
and the time left. (Shorter work says nothing: a test run or a small recipe stays quiet.)
:func:`unfinished` says, after an interrupt, how far the stopped work had come.

Example:
    >>> with progress(3, "convert") as bar:
    ...     for _ in range(3):
    ...         bar.update(1)
    >>> bar.done, unfinished()
    (3, [])
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import time
from typing import Any

from espnet3.errors import ConfigError

log = logging.getLogger("espnet3.progress")

#: Seconds between two progress lines in a batch log (the environment variable overrides).
DEFAULT_SECONDS = 30.0

_OPEN: list[Progress] = []
#: Work an exception (an interrupt, a failure) stopped, newest last: :func:`unfinished` says
#: how far it came once the stack has unwound.
_STOPPED: collections.deque[Progress] = collections.deque(maxlen=8)


def progress(total: int | None, what: str) -> Progress:
    """Count the items of ``what`` (``total`` of them, ``None`` when unknown) as they finish.

    Example:
        >>> bar = progress(None, "scan")
        >>> bar.update(2); bar.close(); bar.done
        2
    """
    return Progress(total, what)


class Progress:
    """One piece of work's count: ``update(n)`` as items finish, ``close()`` at the end.

    A context manager; leaving it by an exception logs no final line (the caller reports).
    """

    def __init__(self, total: int | None, what: str):
        self.total, self.what, self.done = total, what, 0
        self.interval = _interval()
        self.started = self.last = time.monotonic()
        self.reported = False
        self._bar = _tqdm(total) if sys.stderr.isatty() else None
        _OPEN.append(self)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type | None, *_: Any) -> None:
        self.close(finished=kind is None)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last, self.reported = now, True
            log.info("%s", self.line(now))

    def close(self, finished: bool = True) -> None:
        if self not in _OPEN:
            return
        _OPEN.remove(self)
        if self._bar is not None:
            self._bar.close()
        if not finished:
            _STOPPED.append(self)
        elif self._bar is None and (self.reported or self._spent() >= self.interval):
            log.info("%s", self.line(time.monotonic(), final=True))

    def _spent(self) -> float:
        return time.monotonic() - self.started

    def line(self, now: float, final: bool = False) -> str:
        """``what: done/total items (p%), rate, ETA`` (``in N s`` once finished)."""
        spent = max(now - self.started, 1e-9)
        rate = self.done / spent
        count = f"{self.done}" if self.total is None else f"{self.done}/{self.total}"
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = f"{self.what}: {count} items{share}, {rate:.3g} items/s"
        if final:
            return f"{text}, in {_duration(spent)}"
        if self.total is not None and rate > 0:
            text += f", about {_duration((self.total - self.done) / rate)} left"
        return text


def unfinished() -> list[str]:
    """``what: done of total items done`` for the work an exception stopped and the work still
    open; those stopped are then forgotten (for the one message after an interrupt).

    Example:
        >>> bar = progress(10, "fbank train"); bar.update(4)
        >>> bar.close(finished=False)
        >>> unfinished()
        ['fbank train: 4 of 10 items done']
    """
    stopped = [*_STOPPED, *_OPEN]
    _STOPPED.clear()
    return [
        f"{p.what}: {p.done}{'' if p.total is None else f' of {p.total}'} items done"
        for p in stopped
    ]


def _interval() -> float:
    raw = os.environ.get("ESPNET3_PROGRESS_SECONDS")
    if raw is None:
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(
            f"ESPNET3_PROGRESS_SECONDS must be a positive number of seconds, got {raw!r}: "
            f"unset it for the default ({DEFAULT_SECONDS:g} s)"
        )
    return seconds


def _tqdm(total: int | None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="item")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
