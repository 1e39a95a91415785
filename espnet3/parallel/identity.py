"""Check that workers run the same image and package versions as the parent.

A worker in another image (an old SIF on one node, a site module shadowing a package) fails
in ways far from the cause: unpickling errors, different results. So when a container is
configured, :func:`check_worker_identities` compares every connected worker with this process
and refuses to go on, with a table of the differences.

What is compared depends on where the parent runs:

- parent inside an espnet3 image (``ESPNET3_IMAGE_ID`` set): everything in :data:`FIELDS`
  must equal the parent's, exactly;
- parent outside any image (a login node submitting into a SIF): the parent's own packages
  say nothing about the image, so only what must agree for Dask to exchange tasks is
  compared with the parent (python major.minor, dask, distributed, espnet3), and the image
  identity and torch must be the same on every worker (one image per run).

Example:
    >>> me = process_identity()
    >>> sorted(me) == sorted(FIELDS)
    True
    >>> identity_differences(me, {"tcp://w:1": me})
    []
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Mapping
from typing import Any

from espnet3.errors import Espnet3Error

#: What an identity holds: the image identity, then the versions that must agree.
FIELDS = ("image", "python", "dask", "distributed", "espnet3", "torch")
#: Compared between workers when the parent is outside any image.
IMAGE_FIELDS = ("image", "torch")

IMAGE_VARIABLE = "ESPNET3_IMAGE_ID"
NONE = "(none)"


def process_identity() -> dict[str, str]:
    """This process's image identity (``ESPNET3_IMAGE_ID``) and package versions.

    Versions come from package metadata, so nothing (torch) is imported to learn them.
    """
    identity = {
        "image": os.environ.get(IMAGE_VARIABLE) or NONE,
        "python": platform.python_version(),
    }
    for package in FIELDS[2:]:
        try:
            identity[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            identity[package] = "(not installed)"
    return identity


def identity_differences(
    parent: Mapping[str, str],
    workers: Mapping[str, Mapping[str, str]],
    image: Mapping[str, str] | None = None,
) -> list[tuple[str, str, str, str]]:
    """Rows ``(worker, field, expected, found)`` for every difference; empty when all agree.

    See the module docstring for what is compared when ``parent['image']`` is ``(none)``;
    ``image`` then gives the :data:`IMAGE_FIELDS` every worker must have (default: the first
    worker's).
    """
    rows = []
    inside = parent.get("image", NONE) != NONE
    reference = dict(parent)
    if not inside and (image is not None or workers):
        first = image if image is not None else workers[min(workers)]
        reference.update({f: first.get(f, NONE) for f in IMAGE_FIELDS})
    for worker in sorted(workers):
        found = workers[worker]
        for name in FIELDS:
            expected, value = reference.get(name, NONE), found.get(name, NONE)
            if not inside and name == "python":
                expected, value = _minor(expected), _minor(value)
            if expected != value:
                rows.append((worker, name, expected, value))
    return rows


def format_differences(rows: list[tuple[str, str, str, str]]) -> str:
    """A readable table of :func:`identity_differences` rows.

    Example:
        >>> print(format_differences([("tcp://c1:4000", "torch", "2.13.0", "2.9.1")]))
        worker         field  expected  found
        tcp://c1:4000  torch  2.13.0    2.9.1
    """
    header = ("worker", "field", "expected", "found")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def check_worker_identities(client: Any, parent: Mapping[str, str] | None = None) -> dict:
    """Compare every connected worker with ``parent`` (default: this process); raise on a diff.

    Returns ``{worker address: identity}``. The error holds the table of differences.

    Example (needs workers)::

        with get_client(cfg) as client:      # get_client calls it when a container is set
            check_worker_identities(client)
    """
    parent = dict(parent) if parent is not None else process_identity()
    workers = client.run(process_identity)
    rows = identity_differences(parent, workers)
    if rows:
        raise mismatch_error(parent, rows, len(workers))
    return workers


def mismatch_error(parent: Mapping[str, str], rows: list, n_workers: int) -> Espnet3Error:
    """The error for :func:`identity_differences` ``rows`` found among ``n_workers``."""
    inside = parent.get("image", NONE) != NONE
    against = (
        f"the parent's (image {parent['image']})"
        if inside
        else "the parent's Python/Dask/espnet3 and the first worker's image and torch "
        "(the parent runs outside any image)"
    )
    return Espnet3Error(
        f"{len({r[0] for r in rows})} of {n_workers} worker(s) differ from {against}:\n"
        f"{format_differences(rows)}\n"
        f"run every worker from the same image as the parent: check parallel.container.image "
        f"and rebuild or copy the image with containers/build.sh"
    )


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


__all__ = [
    "FIELDS",
    "check_worker_identities",
    "format_differences",
    "identity_differences",
    "process_identity",
]
