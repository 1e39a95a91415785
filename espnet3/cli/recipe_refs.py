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
from typing import Any

from espnet3.components.data.dataset_module import load_dataset_module
from espnet3.errors import ConfigError
from espnet3.utils.imports import import_object


def resolve_object(ref: str, recipe_dir: str | os.PathLike | None = None) -> Any:
    """The object ``ref`` names (see the module docstring)."""
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"expected an object name like 'mini_an4/asr:NAME', got {ref!r}")
    if ":" not in ref:
        return import_object(ref)
    source, _, name = ref.rpartition(":")
    module = load_dataset_module(source or None, recipe_dir=recipe_dir)
    if not hasattr(module, name):
        raise ConfigError(
            f"{ref!r}: the dataset package {module.__file__} does not export {name!r}; "
            "check the name or add it to the package's __init__.py"
        )
    return getattr(module, name)
