"""Resolve a ``data_src`` reference to the dataset package that implements it.

A dataset package is a Python package that exports ``Dataset`` (the class a config
instantiates with the entry's ``data_src_args``) and ``DatasetBuilder`` (a
:class:`~espnet3.components.data.dataset_builder.DatasetBuilder` subclass, constructed with no
arguments). A reference takes one of three forms:

- absent (``None``): the recipe's own package, ``<recipe_dir>/dataset``;
- a recipe name with a slash, ``mini_an4/asr``: the package ``<root>/mini_an4/asr/dataset`` in
  the first recipe root that has it. Roots are searched in this order: the ``recipe_roots``
  argument, the ``ESPNET3_RECIPES`` environment variable (``os.pathsep``-separated), and the
  ``recipes/`` directory of the espnet3 source tree. An absolute path to a recipe directory (or
  to its ``dataset`` package) also works;
- a dotted module name, ``my_project.datasets.librispeech``: imported as is.

Example:
    >>> import pathlib, tempfile
    >>> recipe = pathlib.Path(tempfile.mkdtemp())
    >>> (recipe / "dataset").mkdir()
    >>> _ = (recipe / "dataset" / "__init__.py").write_text("Dataset = list\\nDatasetBuilder = None\\n")
    >>> resolve_dataset_module(None, recipe_dir=recipe).Dataset
    <class 'list'>
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import espnet3
from espnet3.errors import ConfigError, did_you_mean
from espnet3.utils.imports import import_object, import_package_from_dir

RECIPES_ENV = "ESPNET3_RECIPES"
SOURCE_RECIPES = Path(espnet3.__file__).resolve().parents[1] / "recipes"


def recipe_roots(extra: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """The directories searched for ``name/task`` references, in search order.

    Example:
        >>> recipe_roots(["/my/recipes"])[0]
        PosixPath('/my/recipes')
    """
    roots = [Path(p) for p in extra or ()]
    roots += [Path(p) for p in os.environ.get(RECIPES_ENV, "").split(os.pathsep) if p]
    roots.append(SOURCE_RECIPES)
    return roots


def resolve_dataset_module(
    data_src: str | None,
    *,
    recipe_dir: str | os.PathLike | None = None,
    recipe_roots: Iterable[str | os.PathLike] | None = None,
) -> ModuleType:
    """Import and return the dataset package ``data_src`` names (see the module docstring).

    A reference that matches nothing raises :class:`ConfigError` listing every place searched.
    The package must export ``Dataset``; ``DatasetBuilder`` is checked where a builder is
    needed (:func:`builder_class`).
    """
    if data_src is None:
        if recipe_dir is None:
            raise ConfigError(
                "a dataset entry has no data_src and no recipe_dir is set: set recipe_dir to the "
                "recipe directory holding dataset/, or give data_src (e.g. 'mini_an4/asr')"
            )
        module = _import_dir(Path(recipe_dir) / "dataset", "recipe_dir")
    elif not isinstance(data_src, str) or not data_src.strip():
        raise ConfigError(f"data_src must be a non-empty string, got {data_src!r}")
    elif "/" in data_src:
        module = _import_dir(_find_recipe_package(data_src, recipe_roots), data_src)
    else:
        module = import_object(data_src)
        if not isinstance(module, ModuleType):
            raise ConfigError(
                f"data_src {data_src!r} names a {type(module).__name__}, not a module: name the "
                "module that exports Dataset and DatasetBuilder"
            )
    if not hasattr(module, "Dataset"):
        raise ConfigError(
            f"dataset package {_where(module)} (data_src {data_src!r}) does not export Dataset: "
            "define or import a Dataset class in its __init__.py"
        )
    return module


def builder_class(module: ModuleType, data_src: str | None = None) -> type:
    """The ``DatasetBuilder`` subclass ``module`` exports, or a :class:`ConfigError`."""
    from espnet3.components.data.dataset_builder import DatasetBuilder

    cls = getattr(module, "DatasetBuilder", None)
    if not (
        isinstance(cls, type) and issubclass(cls, DatasetBuilder) and cls is not DatasetBuilder
    ):
        raise ConfigError(
            f"dataset package {_where(module)} (data_src {data_src!r}) must export DatasetBuilder, "
            "a subclass of espnet3.components.data.dataset_builder.DatasetBuilder, "
            f"got {cls!r}"
        )
    return cls


def _find_recipe_package(data_src: str, extra_roots: Iterable[str | os.PathLike] | None) -> Path:
    ref = Path(data_src)
    roots = [Path("/")] if ref.is_absolute() else recipe_roots(extra_roots)
    searched = []
    for root in roots:
        base = root / ref
        for candidate in (base / "dataset", base):
            searched.append(candidate)
            if (candidate / "__init__.py").is_file():
                return candidate
    known = [
        str(p.parent.relative_to(root))
        for root in roots
        if root.is_dir() and not ref.is_absolute()
        for p in root.glob("*/*/dataset")
    ]
    raise ConfigError(
        f"data_src {data_src!r} not found{did_you_mean(data_src, known)}: searched "
        + ", ".join(str(p) for p in searched[::2])
        + f". Add a recipe root with the {RECIPES_ENV} environment variable or the recipe_roots "
        "argument, or fix the name"
    )


def _import_dir(path: Path, label: str) -> ModuleType:
    if not (path / "__init__.py").is_file():
        raise ConfigError(
            f"{label}: no dataset package at {path} ({path / '__init__.py'} is missing): create "
            "it, exporting Dataset and DatasetBuilder, or set data_src to another recipe"
        )
    return import_package_from_dir(path)


def _where(module: ModuleType) -> str:
    return getattr(module, "__file__", None) or module.__name__
