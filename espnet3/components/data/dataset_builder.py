"""The contract between ``espnet3 create-dataset`` and a recipe's data preparation.

A builder turns a source (an archive, a download, a directory) into the artifacts a recipe's
``Dataset`` reads (audio files, manifests). Its four methods all take ``**kwargs`` (the
entry's ``data_src_args`` plus the recipe-level ``create_dataset`` arguments) and must be
idempotent:

- ``is_source_prepared(**kw)`` and ``is_built(**kw)`` only look; they never write, and return
  ``True`` only when everything the next step needs is complete.
- ``prepare_source(**kw)`` and ``build(**kw)`` may be re-run after a crash: they write through
  temporary files and atomic renames (:mod:`espnet3.utils.atomic`), so a crash never leaves an
  artifact that ``is_built`` accepts, and a finished artifact is not rewritten.

Helpers that keep these promises: :func:`espnet3.utils.download.download` (resume, retries,
sha256), :func:`espnet3.utils.archive.extract_archive` (no member escapes the target; all or
nothing) and :mod:`espnet3.utils.atomic` for manifests.

Example:
    >>> import tempfile, pathlib
    >>> class Hello(DatasetBuilder):
    ...     def is_source_prepared(self, **kw): return True
    ...     def prepare_source(self, **kw): pass
    ...     def is_built(self, *, out, **kw): return pathlib.Path(out, "hello.txt").exists()
    ...     def build(self, *, out, **kw): pathlib.Path(out, "hello.txt").write_text("hi")
    >>> out = tempfile.mkdtemp()
    >>> builder = Hello()
    >>> builder.is_built(out=out)
    False
    >>> builder.build(out=out); builder.is_built(out=out)
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class DatasetBuilder(ABC):
    """Prepares a dataset's source and builds its artifacts; every step is idempotent."""

    @abstractmethod
    def is_source_prepared(self, **kwargs: Any) -> bool:
        """True when the source (e.g. an extracted archive) is complete on disk."""

    @abstractmethod
    def prepare_source(self, **kwargs: Any) -> None:
        """Fetch and unpack the source; safe to re-run after a crash."""

    @abstractmethod
    def is_built(self, **kwargs: Any) -> bool:
        """True when every artifact the dataset reads exists and is complete."""

    @abstractmethod
    def build(self, **kwargs: Any) -> None:
        """Write the artifacts atomically; safe to re-run after a crash."""
