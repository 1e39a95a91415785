"""Time bounds for tests, relative to how fast this machine is right now.

A loaded machine runs everything slower, so a fixed bound (``< 2.0`` s) fails there while
the behaviour is right. Tests measure a baseline in the same test and bound by a multiple.
"""

from __future__ import annotations

import subprocess
import sys
import time


def python_start_seconds() -> float:
    """Seconds this machine takes now to start Python and import torch and distributed.

    That is the stack every espnet3 process and local worker loads, so the time scales with
    the machine's load as the tested step does.

    Example:
        >>> python_start_seconds() > 0
        True
    """
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch, distributed"], check=True)
    return time.monotonic() - started
