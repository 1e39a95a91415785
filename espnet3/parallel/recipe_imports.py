"""Make recipe packages importable on Dask workers before their tasks arrive.

Recipe packages are imported from their directories under a name derived from the path
(:func:`espnet3.utils.imports.import_package_from_dir`), not from ``sys.path``, and upstream
recipes from the ``egs3`` trees this process found (:mod:`espnet3.utils.egs3_tree`). A worker
process therefore cannot unpickle a recipe's function or load a recipe's provider class by
name until it has imported the same directory (or knows the same tree);
:class:`RecipeImportPlugin` does that when each worker starts, and
:func:`share_recipe_packages` registers it for every such package and tree this process has
(maps and runners do it before their first task).

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

from espnet3.utils.egs3_tree import ENV, register
from espnet3.utils.imports import DIR_PACKAGE_PREFIX, import_package_from_dir

_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> dirs registered


class RecipeImportPlugin(WorkerPlugin):
    """Imports every package directory in ``package_dirs`` and adds every ``egs3`` tree in
    ``trees`` on each worker, at worker start."""

    def __init__(self, package_dirs: Iterable[str | os.PathLike], trees: Iterable[str] = ()):
        self.package_dirs = sorted({os.path.abspath(d) for d in package_dirs})
        self.trees = sorted(set(trees))
        key = "\n".join([*self.package_dirs, *self.trees])
        self.name = f"espnet3-recipe-imports-{hashlib.sha1(key.encode()).hexdigest()[:12]}"

    def setup(self, worker: Any) -> None:
        for tree in self.trees:
            register(tree)
        for directory in self.package_dirs:
            import_package_from_dir(directory)


def share_recipe_packages(client: Any) -> None:
    """Register :class:`RecipeImportPlugin` for the directory packages and ``egs3`` trees of
    this process (once per client and set)."""
    dirs = sorted(
        module.__path__[0]
        for name, module in list(sys.modules.items())
        if name.startswith(DIR_PACKAGE_PREFIX) and "." not in name
    )
    trees = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    if (dirs or trees) and _SHARED.get(client) != (dirs, trees):
        client.register_plugin(RecipeImportPlugin(dirs, trees))
        _SHARED[client] = (dirs, trees)
