"""Resolve a dataset entry's ``data_src`` to its dataset module, and build the dataset.

A dataset module is a Python module (usually a recipe's ``dataset/`` package) exporting
``Dataset`` (instantiated with the entry's ``data_src_args``) and ``DatasetBuilder`` (the
four-step builder ``create_dataset`` runs, constructed with no arguments). ``data_src`` takes
one of three forms:

- absent or blank: the recipe's own package, ``<recipe_dir>/dataset``;
- a tag with a slash, ``mini_an4/asr``: the module ``egs3.mini_an4.asr.dataset`` when an
  ``egs3`` recipe tree is importable (as upstream ESPnet3 resolves tags), else the package
  ``<root>/mini_an4/asr/dataset`` in the first recipe root that has it. Roots are searched in
  this order: the ``recipe_roots`` argument, the tree ``recipe_dir`` belongs to (its
  grandparent: ``recipes/`` for ``recipes/mini_an4/asr``), the ``ESPNET3_RECIPES`` environment
  variable (``os.pathsep``-separated), and the ``recipes/`` directory of the espnet3 source
  tree (there only when espnet3 runs from its source, not once installed). An absolute path to
  a recipe directory (or to its ``dataset`` package) also works;
- a dotted module name, ``my_project.datasets.librispeech``: imported as is.

Example:
    >>> import pathlib, tempfile
    >>> recipe = pathlib.Path(tempfile.mkdtemp())
    >>> (recipe / "dataset").mkdir()
    >>> _ = (recipe / "dataset" / "__init__.py").write_text("Dataset = dict\\n")
    >>> instantiate_dataset_reference({"data_src_args": {"split": "test"}}, recipe_dir=recipe)
    {'split': 'test'}
    >>> resolve_dataset_module_name("mini_an4/asr")
    'egs3.mini_an4.asr.dataset'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

import espnet3
from espnet3.errors import ConfigError, ContractError, ModuleMissingError, did_you_mean
from espnet3.utils import egs3_tree
from espnet3.utils.checks import as_mapping
from espnet3.utils.imports import import_package_from_dir, instantiate

RECIPES_ENV = "ESPNET3_RECIPES"
SOURCE_RECIPES = Path(espnet3.__file__).resolve().parents[1] / "recipes"
#: The namespace upstream ESPnet3 recipes live in: ``egs3.<recipe>.<task>.dataset``.
RECIPE_NAMESPACE = "egs3"
BUILDER_STEPS = ("is_source_prepared", "prepare_source", "is_built", "build")


def recipe_roots(extra: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """The directories searched for ``name/task`` tags, in search order.

    Example:
        >>> recipe_roots(["/my/recipes"])[0]
        PosixPath('/my/recipes')
    """
    roots = [Path(p) for p in extra or ()]
    roots += [Path(p) for p in os.environ.get(RECIPES_ENV, "").split(os.pathsep) if p]
    roots.append(SOURCE_RECIPES)
    return roots


def resolve_dataset_module_name(ref: str) -> str:
    """The module name of tag ``ref`` in the ``egs3`` namespace (hyphens become underscores).

    Example:
        >>> resolve_dataset_module_name("my-corpus/asr")
        'egs3.my_corpus.asr.dataset'
    """
    parts = [part.replace("-", "_") for part in ref.strip("/").split("/")]
    return ".".join((RECIPE_NAMESPACE, *parts, "dataset"))


def _is_tag(ref: str) -> bool:
    """A ``recipe/task`` tag (or a path) rather than a dotted module name."""
    return "/" in ref


def parse_dataset_reference_config(config: Any) -> tuple[str | None, dict[str, Any]]:
    """``(data_src, data_src_args)`` of a dataset entry; a blank ``data_src`` is ``None``.

    Other keys (``name``, ``transform``, ...) are not looked at here.

    Example:
        >>> parse_dataset_reference_config({"data_src": " ", "data_src_args": {"split": "dev"}})
        (None, {'split': 'dev'})
    """
    plain = as_mapping(config, "dataset entry")
    data_src = plain.get("data_src")
    if data_src is not None and not isinstance(data_src, str):
        raise ConfigError(
            f"data_src must be a string such as 'mini_an4/asr', got {type(data_src).__name__} "
            f"{data_src!r}"
        )
    args = as_mapping(plain.get("data_src_args"), f"data_src_args of data_src {data_src!r}")
    return (data_src.strip() or None) if data_src else None, args


def load_dataset_module(
    data_src: str | None = None,
    recipe_dir: str | os.PathLike | None = None,
    *,
    recipe_roots: Iterable[str | os.PathLike] | None = None,
) -> ModuleType:
    """Import and return the dataset module ``data_src`` names (see the module docstring).

    Nothing is instantiated. A reference that matches nothing raises
    :class:`~espnet3.errors.ModuleMissingError` (a ``ModuleNotFoundError``) listing every place
    searched.
    """
    data_src = data_src.strip() or None if isinstance(data_src, str) else data_src
    if data_src is None:
        if recipe_dir is None:
            raise ContractError(
                "recipe_dir must be set when data_src is None: set recipe_dir to the recipe "
                "directory holding dataset/, or give data_src (e.g. 'mini_an4/asr')"
            )
        return _import_dir(Path(recipe_dir) / "dataset", f"recipe_dir {str(recipe_dir)!r}")
    if not isinstance(data_src, str):
        raise ConfigError(f"data_src must be a string, got {type(data_src).__name__} {data_src!r}")
    if _is_tag(data_src):
        if not Path(data_src).is_absolute():
            egs3_tree.refresh()
            module = _import_if_present(resolve_dataset_module_name(data_src))
            if module is not None:
                return module
        roots = [*(recipe_roots or ()), *_recipe_tree(recipe_dir)]
        return _import_dir(_find_recipe_package(data_src, roots), data_src)
    module = _import_if_present(data_src)
    if module is None:
        raise ModuleMissingError(
            f"data_src {data_src!r}: no module of that name can be imported: install the "
            "package that provides it, put it on PYTHONPATH, or use a recipe tag like "
            "'mini_an4/asr'"
        )
    return module


def instantiate_dataset_reference(config: Any, recipe_dir: str | os.PathLike | None = None) -> Any:
    """The dataset one entry describes.

    An entry with ``dataset`` (a Hydra ``_target_`` config, or an object) is built from it;
    otherwise the result is ``Dataset(**data_src_args)`` of the module ``data_src`` names.

    Example:
        >>> instantiate_dataset_reference({"dataset": {"_target_": "builtins.list"}})
        []
    """
    plain = as_mapping(config, "dataset entry")
    if plain.get("dataset") is not None:
        return instantiate(plain["dataset"])
    data_src, args = parse_dataset_reference_config(plain)
    module = load_dataset_module(data_src, recipe_dir)
    dataset_cls = getattr(module, "Dataset", None)
    if dataset_cls is None:
        raise ConfigError(
            f"dataset module {_where(module)} (data_src {data_src!r}) does not export Dataset: "
            "define or import a Dataset class in it"
        )
    return dataset_cls(**args)


def builder_class(module: ModuleType, data_src: str | None = None) -> type:
    """The ``DatasetBuilder`` class ``module`` exports: any class with the four builder steps.

    Example:
        >>> import types
        >>> from espnet3.components.data.dataset_builder import DatasetBuilder
        >>> module = types.ModuleType("egs3.my_corpus.asr.dataset")
        >>> module.DatasetBuilder = DatasetBuilder
        >>> builder_class(module)
        Traceback (most recent call last):
        ...
        espnet3.errors.ConfigError: dataset module egs3.my_corpus.asr.dataset (data_src None) exports DatasetBuilder, the abstract base class itself: subclass it and implement is_source_prepared, prepare_source, is_built, build
        >>> class Builder(DatasetBuilder):
        ...     def is_source_prepared(self, **kw): return True
        ...     def prepare_source(self, **kw): pass
        ...     def is_built(self, **kw): return True
        ...     def build(self, **kw): pass
        >>> module.DatasetBuilder = Builder
        >>> builder_class(module) is Builder
        True
    """
    from espnet3.components.data.dataset_builder import DatasetBuilder

    cls = getattr(module, "DatasetBuilder", None)
    steps = ", ".join(BUILDER_STEPS)
    if cls is DatasetBuilder:
        raise ConfigError(
            f"dataset module {_where(module)} (data_src {data_src!r}) exports DatasetBuilder, "
            f"the abstract base class itself: subclass it and implement {steps}"
        )
    missing = [step for step in BUILDER_STEPS if not callable(getattr(cls, step, None))]
    if not isinstance(cls, type) or missing:
        raise ConfigError(
            f"dataset module {_where(module)} (data_src {data_src!r}) must export DatasetBuilder, "
            f"a class with {steps}; got {cls!r}"
            + (f" (it lacks {', '.join(missing)})" if cls is not None and missing else "")
        )
    return cls


def _import_if_present(name: str) -> ModuleType | None:
    """``import_module(name)``, or ``None`` when ``name`` (or a package above it) does not exist.

    A module that exists but fails to import, missing one of its own dependencies included,
    raises as it would.
    """
    try:
        return import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and (name + ".").startswith(err.name + "."):
            return None
        raise


def _recipe_tree(recipe_dir: str | os.PathLike | None) -> list[Path]:
    """The recipe root ``recipe_dir`` (``<root>/<corpus>/<task>``) lies in, if it has one."""
    if recipe_dir is None:
        return []
    parents = Path(recipe_dir).resolve().parents
    return [parents[1]] if len(parents) > 1 else []


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
    namespace = "" if ref.is_absolute() else f"module {resolve_dataset_module_name(data_src)}, "
    raise ModuleMissingError(
        f"data_src {data_src!r} not found{did_you_mean(data_src, known)}: searched {namespace}"
        + ", ".join(str(p) for p in searched[::2])
        + f". Add a recipe root with the {RECIPES_ENV} environment variable, or fix the name"
    )


def _import_dir(path: Path, label: str) -> ModuleType:
    if not (path / "__init__.py").is_file():
        raise ModuleMissingError(
            f"{label}: no dataset package at {path} ({path / '__init__.py'} is missing): create "
            "it, exporting Dataset and DatasetBuilder, or set data_src to another recipe"
        )
    return import_package_from_dir(path)


def _where(module: Any) -> str:
    return getattr(module, "__file__", None) or getattr(module, "__name__", None) or repr(module)
