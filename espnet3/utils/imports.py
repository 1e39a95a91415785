"""Import Python objects named in configs, and packages that live in plain directories.

Recipe directories are not Python packages (``recipes/mini_an4/asr`` is not importable), yet
their ``dataset/`` package must be imported with its relative imports working
(``from .builder import DatasetBuilder``). :func:`import_package_from_dir` does that without
touching ``sys.path``: the package gets a name derived from its absolute path, so every process
that imports the same directory gets the same module name (and classes pickle by reference
consistently), while two recipes with a ``dataset`` package never collide.

Example:
    >>> import pathlib, tempfile
    >>> pkg = pathlib.Path(tempfile.mkdtemp(), "dataset")
    >>> pkg.mkdir()
    >>> _ = (pkg / "impl.py").write_text("VALUE = 42\\n")
    >>> _ = (pkg / "__init__.py").write_text("from .impl import VALUE\\n")
    >>> import_package_from_dir(pkg).VALUE
    42
    >>> import_object("os.path.join")("a", "b")
    'a/b'
    >>> instantiate({"_target_": "builtins.dict", "a": 1})
    {'a': 1}
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from espnet3.errors import ConfigError

#: Prefix of the module names :func:`import_package_from_dir` gives.
DIR_PACKAGE_PREFIX = "espnet3_dir_"


def package_name_for_dir(directory: str | Path) -> str:
    """The module name :func:`import_package_from_dir` gives ``directory``.

    Example:
        >>> package_name_for_dir("/r/mini_an4/asr/dataset").startswith("espnet3_dir_")
        True
    """
    path = Path(directory).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    readable = "_".join(re.sub(r"\W", "_", part) for part in path.parts[-3:])
    return f"{DIR_PACKAGE_PREFIX}{readable}_{digest}"


def import_package_from_dir(directory: str | Path) -> ModuleType:
    """Import the package in ``directory`` (which holds ``__init__.py``) and return it.

    Importing the same directory again returns the module already loaded. A failure inside
    the package's own code propagates unchanged, and leaves no half-initialised module behind.
    """
    path = Path(directory).resolve()
    init = path / "__init__.py"
    if not init.is_file():
        raise ConfigError(f"{path} is not a Python package: create {init} to make it one")
    name = package_name_for_dir(path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(path)]
    )
    module = importlib.util.module_from_spec(spec)
    # Relative imports inside the package look their parent up in sys.modules.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        raise
    return module


def import_object(dotted: str) -> Any:
    """Return the object named by ``dotted`` (``package.module.attr`` or ``package.module``).

    The longest importable module prefix is imported and the rest looked up as attributes.
    """
    parts = dotted.split(".")
    if not dotted or not all(p.isidentifier() for p in parts):
        raise ConfigError(f"{dotted!r} is not a dotted Python name like 'package.module.Class'")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # Only "this prefix does not exist" moves on; a missing import *inside* the module
            # is a real error of that module and must surface.
            if err.name is not None and (module_name + ".").startswith(err.name + "."):
                continue
            raise
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise ConfigError(
                f"{dotted!r}: module {module_name!r} has no attribute "
                f"{'.'.join(parts[cut:])!r}; check the spelling"
            ) from None
        return obj
    raise ConfigError(f"cannot import {dotted!r}: no module {parts[0]!r} is installed")


def instantiate(value: Any) -> Any:
    """Build what a config value names: a Hydra ``_target_`` mapping is instantiated, a dotted
    string is imported, anything else (an object already built, ``None``) is returned as is.

    Example:
        >>> instantiate("os.path.basename")("/a/b")
        'b'
    """
    from espnet3.utils.checks import to_plain

    value = to_plain(value)
    if isinstance(value, str) and "." in value:
        return import_object(value)
    if isinstance(value, dict) and "_target_" in value:
        from hydra.utils import instantiate as hydra_instantiate

        return hydra_instantiate(value)
    return value
