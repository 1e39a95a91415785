"""What the command line says on an error: one line, exit status 1, no traceback."""

from __future__ import annotations

import subprocess


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single ``espnet3: error: ...`` line of a failed command (asserted to be alone)."""
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("espnet3: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]
