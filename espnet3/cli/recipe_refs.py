"""Find the Python objects a recipe config names, and the packages workers must import.

A config names an object either as ``REF:NAME`` (``NAME`` exported by the dataset package
that the ``data_src`` reference ``REF`` resolves to, e.g. ``mini_an4/asr:compute_features``)
or as a dotted name of an installed module (``package.module.name``).

Example:
    >>> resolve_object("os.path.basename")("/a/b")
    'b'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from espnet3.components.data.dataset_reference import resolve_dataset_module
from espnet3.errors import ConfigError
from espnet3.utils.imports import import_object


def resolve_object(ref: str, recipe_dir: str | os.PathLike | None = None) -> Any:
    """The object ``ref`` names (see the module docstring)."""
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"expected an object name like 'mini_an4/asr:NAME', got {ref!r}")
    if ":" not in ref:
        return import_object(ref)
    source, _, name = ref.rpartition(":")
    module = resolve_dataset_module(source or None, recipe_dir=recipe_dir)
    if not hasattr(module, name):
        raise ConfigError(
            f"{ref!r}: the dataset package {module.__file__} does not export {name!r}; "
            "check the name or add it to the package's __init__.py"
        )
    return getattr(module, name)


def package_dir(obj: Any) -> Path | None:
    """The directory of the recipe package ``obj`` (a module, class or function) comes from.

    ``None`` for objects of ordinary installed modules, which workers import by name.
    """
    import sys

    name = obj.__name__ if isinstance(obj, type(sys)) else getattr(obj, "__module__", "")
    top = sys.modules.get(name.split(".")[0])
    if top is None or not name.startswith("espnet3_dir_"):
        return None
    return Path(top.__file__).parent
