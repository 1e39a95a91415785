"""Make recipe packages importable on Dask workers before their tasks arrive.

Recipe packages are imported from their directories under a name derived from the path
(:func:`espnet3.utils.imports.import_package_from_dir`), not from ``sys.path``. A worker
process therefore cannot unpickle a recipe's function or load a recipe's provider class by
name until it has imported the same directory; :class:`RecipeImportPlugin` does that when each
worker starts, and :func:`share_recipe_packages` registers it for every such package this
process has imported (maps do it before their first task).

Example:
    >>> from espnet3.parallel import get_client
    >>> with get_client({"env": "local", "n_workers": 1}) as client:    # doctest: +SKIP
    ...     client.register_plugin(RecipeImportPlugin(["recipes/mini_an4/asr/dataset"]))
"""

from __future__ import annotations

import hashlib
import os
import sys
import weakref
from collections.abc import Iterable
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from espnet3.utils.imports import DIR_PACKAGE_PREFIX, import_package_from_dir

_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> dirs registered


class RecipeImportPlugin(WorkerPlugin):
    """Imports every package directory in ``package_dirs`` on each worker, at worker start."""

    def __init__(self, package_dirs: Iterable[str | os.PathLike]):
        self.package_dirs = sorted({os.path.abspath(d) for d in package_dirs})
        digest = hashlib.sha1("\n".join(self.package_dirs).encode()).hexdigest()[:12]
        self.name = f"espnet3-recipe-imports-{digest}"

    def setup(self, worker: Any) -> None:
        for directory in self.package_dirs:
            import_package_from_dir(directory)


def share_recipe_packages(client: Any) -> None:
    """Register :class:`RecipeImportPlugin` for the directory packages imported here (once)."""
    dirs = sorted(
        module.__path__[0]
        for name, module in list(sys.modules.items())
        if name.startswith(DIR_PACKAGE_PREFIX) and "." not in name
    )
    if dirs and _SHARED.get(client) != dirs:
        client.register_plugin(RecipeImportPlugin(dirs))
        _SHARED[client] = dirs
