"""Upstream ESPnet3's recipe tree, ``egs3.<corpus>.<task>``, importable wherever it was copied.

This package holds no recipe itself: its ``__path__`` is the ``egs3/`` directories of the
recipe being run (see :mod:`espnet3.utils.egs3_tree`), so ``from egs3.TEMPLATE.asr.run import
main`` in an upstream ``run.py`` works without setting PYTHONPATH.
"""

from espnet3.utils.egs3_tree import package_path

__path__ = package_path(list(__path__))
