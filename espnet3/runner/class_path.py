"""Name a class by ``module:QualName`` and import it back, so specs carry no pickles.

A class from a package imported out of a plain directory (a recipe's ``dataset/`` package, see
:func:`espnet3.utils.imports.import_package_from_dir`) is named ``module:QualName@DIRECTORY``:
another process imports the directory first, under the same module name. A class of an
upstream recipe (``egs3.<corpus>.<task>...``) is named ``module:QualName@EGS3_DIR``: another
process adds that recipe tree to the ``egs3`` package first (:mod:`espnet3.utils.egs3_tree`).
A class defined in the script being run (``__main__``) or inside a function has no path: Dask
workers get it by value (:func:`class_ref`), detached shard jobs cannot get it at all.

Example:
    >>> from collections import OrderedDict
    >>> class_path(OrderedDict)
    'collections:OrderedDict'
    >>> load_class("collections:OrderedDict") is OrderedDict
    True
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from espnet3.errors import ConfigError
from espnet3.utils.egs3_tree import PACKAGE as EGS3
from espnet3.utils.egs3_tree import egs3_dir_of, register
from espnet3.utils.imports import DIR_PACKAGE_PREFIX, import_package_from_dir


def class_path(cls: type) -> str:
    """``module:QualName`` of ``cls``; a class another process cannot import is an error.

    Example:
        >>> class_path(dict)
        'builtins:dict'
    """
    return class_paths(cls)[0]


def class_paths(*classes: type) -> list[str]:
    """The :func:`class_path` of each class; one error names every class that has none.

    A detached shard job (``async_mode``) rebuilds its runner and provider in a new process by
    importing these paths, so a class defined in the user's script (``__main__``) or inside a
    function cannot travel that way; a synchronous Dask run ships such a class by value
    instead (:func:`class_ref`).

    Example:
        >>> class_paths(dict, list)
        ['builtins:dict', 'builtins:list']
    """
    unnamed = [cls for cls in classes if not importable(cls)]
    if unnamed:
        where = ", ".join(
            f"{cls.__qualname__!r} (defined in {cls.__module__!r}"
            f"{' inside a function' if '<locals>' in cls.__qualname__ else ''})"
            for cls in unnamed
        )
        several = len(unnamed) > 1
        them = "them" if several else "it"
        raise ConfigError(
            f"{'classes' if several else 'class'} {where} {'have' if several else 'has'} no "
            "import path, and a detached shard job (async_mode) rebuilds the runner and provider "
            f"in a new process by importing their classes by path: move {them} to a module on "
            "the Python path (e.g. a file beside the script, imported from it), or run without "
            f"async_mode, which ships {them} to the Dask workers by value"
        )
    return [_path_of(cls) for cls in classes]


def class_ref(cls: type) -> str | type:
    """What names ``cls`` to a Dask worker: its :func:`class_path`, or ``cls`` itself when it
    has none (defined in ``__main__`` or inside a function); Dask pickles such a class by
    value (cloudpickle), as it does a script's functions.

    Example:
        >>> class_ref(dict)
        'builtins:dict'
        >>> def make():
        ...     class Local:
        ...         pass
        ...     return Local
        >>> class_ref(make()).__qualname__
        'make.<locals>.Local'
    """
    return _path_of(cls) if importable(cls) else cls


def importable(cls: type) -> bool:
    """Whether another process can import ``cls`` by its path: it is defined neither in
    ``__main__`` (the script being run) nor inside a function.

    Example:
        >>> importable(dict)
        True
    """
    return cls.__module__ != "__main__" and "<locals>" not in cls.__qualname__


def _path_of(cls: type) -> str:
    """``module:QualName`` of an importable ``cls``, with the directory its package needs."""
    path = f"{cls.__module__}:{cls.__qualname__}"
    top = cls.__module__.partition(".")[0]
    if top.startswith(DIR_PACKAGE_PREFIX):
        return f"{path}@{sys.modules[top].__path__[0]}"
    if top == EGS3:
        tree = egs3_dir_of(sys.modules[cls.__module__].__file__)
        return f"{path}@{tree}" if tree is not None else path
    return path


def load_class(path: str) -> type:
    """Import the class named ``module:QualName``, or fail naming what is missing.

    Example:
        >>> load_class("builtins:dict")
        <class 'dict'>
    """
    name, _, directory = path.partition("@")
    module_name, _, qualname = name.partition(":")
    try:
        if directory and module_name.partition(".")[0] == EGS3:
            register(directory)
        elif directory:
            import_package_from_dir(directory)
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot import class {path!r} ({type(exc).__name__}: {exc}): check that its "
            f"module is installed or on PYTHONPATH in this process"
        ) from None
    return obj
