"""Make upstream ESPnet3's recipe tree importable: ``egs3.<corpus>.<task>`` without PYTHONPATH.

Upstream recipes import each other and their templates by absolute name (``from
egs3.TEMPLATE.asr.run import main``), which works only when the directory holding ``egs3/``
is on the Python path. espnet3 ships a package named ``egs3`` whose ``__path__`` is the
``egs3/`` directories found here, so those imports resolve wherever the recipe was copied:

1. the directories in ``ESPNET3_EGS3`` (``os.pathsep``-separated);
2. the ``egs3/`` above the script being run (``python egs3/mini_an4/asr/run.py``, or
   ``cd egs3/mini_an4/asr && python run.py``);
3. the ``egs3/`` above (or in) the working directory;
4. the ``egs3`` packages on ``sys.path`` (upstream's own way: ``PYTHONPATH=/path/to/espnet``).

The directories found are put in ``ESPNET3_EGS3``, so every process started from here (local
Dask workers, batch jobs, shard jobs) finds the same tree; a recipe's classes also carry their
tree in their class path (:func:`espnet3.runner.class_path.class_path`).

Example:
    >>> egs3_dir_of("/work/upstream/egs3/mini_an4/asr/run.py")
    PosixPath('/work/upstream/egs3')
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "ESPNET3_EGS3"
PACKAGE = "egs3"


def egs3_dir_of(path: str | os.PathLike) -> Path | None:
    """The ``egs3`` directory ``path`` lies in (or is), else ``None``."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.name == PACKAGE:
            return candidate
    return None


def discover() -> list[Path]:
    """The ``egs3/`` directories of this process, in search order (see the module docstring)."""
    found = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    script = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else None
    for start in (script, os.getcwd()):
        if start is None:
            continue
        tree = egs3_dir_of(start)
        if tree is None and (Path(start) / PACKAGE).is_dir():
            tree = Path(start) / PACKAGE
        if tree is not None:
            found.append(tree)
    found += [Path(p or ".") / PACKAGE for p in sys.path if (Path(p or ".") / PACKAGE).is_dir()]
    return _unique(found)


def register(directory: str | os.PathLike) -> None:
    """Add an ``egs3/`` directory to the package's search path, here and in every process
    started from here."""
    directory = Path(directory).resolve()
    known = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    if directory not in known:
        os.environ[ENV] = os.pathsep.join(map(str, [*known, directory]))
    package = sys.modules.get(PACKAGE)
    if package is not None and str(directory) not in package.__path__:
        package.__path__.insert(len(package.__path__) - 1, str(directory))  # before ours


def package_path(own: list[str]) -> list[str]:
    """The ``__path__`` of the ``egs3`` package: the trees found, then espnet3's own."""
    _OWN[:] = own
    mine = {Path(p).resolve() for p in own}
    trees = [tree for tree in discover() if tree.resolve() not in mine]
    if trees:
        os.environ[ENV] = os.pathsep.join(map(str, trees))
    return _unique([*map(str, trees), *own])


def refresh() -> None:
    """Bring the imported ``egs3`` package's search path up to date with the trees found now
    (one put on ``sys.path`` or in ``ESPNET3_EGS3`` since, a new working directory)."""
    package = sys.modules.get(PACKAGE)
    if package is not None and _OWN and list(package.__path__)[-len(_OWN) :] == _OWN:
        package.__path__[:] = package_path(list(_OWN))


#: The directory of espnet3's own ``egs3`` package, once it is imported.
_OWN: list[str] = []


def _unique(items: list) -> list:
    seen, out = set(), []
    for item in items:
        key = str(Path(item).resolve())
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
