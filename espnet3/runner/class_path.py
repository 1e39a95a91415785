"""Name a class by ``module:QualName`` and import it back, so specs carry no pickles.

A class from a package imported out of a plain directory (a recipe's ``dataset/`` package, see
:func:`espnet3.utils.imports.import_package_from_dir`) is named ``module:QualName@DIRECTORY``:
another process imports the directory first, under the same module name. A class of an
upstream recipe (``egs3.<corpus>.<task>...``) is named ``module:QualName@EGS3_DIR``: another
process adds that recipe tree to the ``egs3`` package first (:mod:`espnet3.utils.egs3_tree`).

Example:
    >>> from collections import OrderedDict
    >>> class_path(OrderedDict)
    'collections:OrderedDict'
    >>> load_class("collections:OrderedDict") is OrderedDict
    True
"""

from __future__ import annotations

import hashlib
import importlib
import json
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
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ConfigError(
            f"class {cls.__qualname__!r} is defined in {cls.__module__!r}"
            f"{' inside a function' if '<locals>' in cls.__qualname__ else ''}, so worker "
            f"processes cannot import it: move it to a module on the Python path"
        )
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


def stable_hash(*parts: Any) -> str:
    """A short hex digest of JSON-like ``parts``, equal in every process and on every run.

    Objects JSON cannot encode enter by ``repr``, which is stable within one process only.

    Example:
        >>> stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})
        True
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
